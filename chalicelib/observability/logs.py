"""Structured logs: one JSON object per line, each carrying the work it is about.

The context (job, chunk, processor, tenant, the invocation) lives in a
ContextVar, set once where the work starts (an invocation, a chunk, a job),
so a log call anywhere below says nothing but its message. It is scoped:
`log_context` puts back what was there when its block ends, so a warm Lambda
that runs job after job never lends one job's fields to the next. A thread
starts with an empty context (Python gives each new thread its own); `carry`
takes the caller's context along when work moves to another thread.

What must never be logged (API keys, bearer tokens, the callback secret) is
redacted from every string of every line before it is written, whatever the
code above asked to log: the belt to the braces of not logging them at all.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

# Present on every line, null where the work has none (an API request has no chunk).
CONTEXT_FIELDS = ("job_id", "chunk", "processor", "tenant")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("sluice_log_context",
                                                                            default=_EMPTY)


def current_context() -> Mapping[str, Any]:
    return _context.get()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (None values are left out)."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` to the current context until the enclosing `log_context`
    ends: for what is learnt part-way through (a job's tenant, once read)."""
    _context.set(_merged(fields))


def carry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` running under the caller's context, on whatever thread calls it."""
    fields = dict(_context.get())

    @functools.wraps(fn)
    def with_context(*args: Any, **kwargs: Any) -> Any:
        with log_context(**fields):
            return fn(*args, **kwargs)
    return with_context


def _merged(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


# -- redaction -----------------------------------------------------------------

REDACTED = "[redacted]"
# Shorter secrets are not searched for: they would blank out ordinary words.
MIN_SECRET_CHARS = 8
_PATTERNS = (
    # Authorization headers and anything else sent as a bearer token.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + REDACTED),
    # The WebSocket connect URL's ?api_key=... and other key-bearing parameters.
    (re.compile(r"(?i)\b(api[_-]?key|token)=[^&\s\"']+"), r"\1=" + REDACTED),
    # Sluice API keys (slk_ + 43 URL-safe characters), wherever else they appear.
    (re.compile(r"slk_[A-Za-z0-9_\-]{8,}"), "slk_" + REDACTED),
)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def clean(self, value: Any) -> Any:
        """A JSON-ready copy of `value` with every string redacted."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(v) for v in value]
        return self(value if isinstance(value, str) else str(value))


# -- the JSON formatter --------------------------------------------------------

# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """timestamp, level, logger, message, the context fields, then whatever
    the call passed as `extra=` and the exception, all redacted."""

    def __init__(self, redactor: Redactor | None = None):
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        context = current_context()
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: context.get(name) for name in CONTEXT_FIELDS},
            **{k: v for k, v in context.items() if k not in CONTEXT_FIELDS},
            # A field the call names itself is more precise than the context's.
            **{k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES},
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(self.redactor.clean(line), ensure_ascii=False, separators=(",", ":"))


_installed = False


def installed() -> bool:
    """Whether install() made this process's root logger write JSON lines."""
    return _installed


def install(level: int | str = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Make the root logger write JSON lines: the handlers it has (Lambda's
    runtime installs one) get the JSON formatter; with none, one writing to
    stderr is added. Safe to call again (a later call may add secrets)."""
    global _installed
    _installed = True
    root = logging.getLogger()
    formatter = JsonFormatter(Redactor(secrets))
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
    # botocore says "Found credentials in environment variables" for every client.
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
