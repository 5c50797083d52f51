"""A rate limit shared by every Lambda: fixed windows counted in DynamoDB.

    limiter = RateLimiter(DynamoWindowCounter(client, table), "factor-api", limit=10, per_seconds=1)
    limiter.acquire(max_wait_s=60)   # blocks until this process may make one call

The counter is the port (WindowCounter); chalicelib/adapters/dynamodb_limits.py
implements it on the jobs table, memory.py in this process.
"""
from .limiter import Decision, RateLimiter, RateLimitTimeoutError
from .memory import MemoryWindowCounter
from .ports import WindowCounter

__all__ = ["Decision", "MemoryWindowCounter", "RateLimitTimeoutError", "RateLimiter", "WindowCounter"]
