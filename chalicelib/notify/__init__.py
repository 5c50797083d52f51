"""Telling the outside world a job has finished: signed HTTP callbacks.

The lead's callback worker re-enqueues a failed delivery with
`next_delay(attempt)` until `MAX_ATTEMPTS`, then moves it to the DLQ.
"""
from .callbacks import (
    EVENT_ID_HEADER,
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    DeliveryResult,
    deliver,
    next_delay,
    sign,
    validate_callback_url,
    verify,
)

__all__ = [
    "EVENT_ID_HEADER", "MAX_ATTEMPTS", "SIGNATURE_HEADER", "DeliveryResult", "deliver",
    "next_delay", "sign", "validate_callback_url", "verify",
]
