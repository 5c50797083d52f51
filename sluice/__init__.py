"""Sluice's command-line client and the HTTP client under it: a tool for
people and scripts, never deployed to Lambda (chalicelib does not import it).

    python -m sluice submit examples/sales.csv --processor profile --out results/
"""
from .client import (
    DEFAULT_API_URL,
    SluiceApiError,
    SluiceClient,
    SluiceClientError,
    SluiceUnreachableError,
)

__all__ = ["DEFAULT_API_URL", "SluiceApiError", "SluiceClient", "SluiceClientError", "SluiceUnreachableError"]
