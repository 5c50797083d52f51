"""Logs, traces and metrics: what Sluice tells about its own work.

`configure(app)` runs once, when app.py is imported. The jobs code marks
where its work starts (`observed_chunk`, `observed_job`) and what it turns out
to be about (`bind`); nothing else in chalicelib knows any of this exists.
"""
from __future__ import annotations

import os
from typing import Any

from ..settings import get_settings
from . import logs, metrics, tracing
from .metrics import chunk_counted, chunks_given_up, record_job_endings
from .scopes import bind, invocation_middleware, observed_chunk, observed_job

__all__ = [
    "bind", "chunk_counted", "chunks_given_up", "configure", "logs", "metrics", "observed_chunk",
    "observed_job", "record_job_endings", "tracing",
]


def configure(app: Any) -> None:
    """JSON logs on Lambda (and in local_cloud's workers, which install them
    before importing the app), X-Ray when the function traces, and the
    invocation's context for every handler."""
    settings = get_settings()
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or logs.installed():
        logs.install(settings.log_level, secrets=[settings.callback_secret])
        # Chalice gives app.log a text handler of its own; its lines go through the root's instead.
        app.log.handlers.clear()
        app.log.propagate = True
    tracing.configure(settings.xray)
    app.register_middleware(invocation_middleware, "all")
