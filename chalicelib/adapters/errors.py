"""botocore's errors as the domain's, at the adapters' edge.

An adapter handles the answers it expects itself (a failed condition becomes
TransitionRejectedError, a missing S3 object InputError); whatever botocore
raises beyond those (a throttle, a 5xx, a timeout, an unreachable endpoint)
leaves as ServiceError, the error the handlers let propagate so the event is
delivered again. Left as botocore's own, it would reach the `except
Exception` blocks that end a job or a chunk for good.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from ..jobs.model import ServiceError


@contextlib.contextmanager
def service_errors(service: str) -> Iterator[None]:
    """Turns botocore's errors into ServiceError; usable as a decorator."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise ServiceError(f"{service} failed: {exc}") from exc
