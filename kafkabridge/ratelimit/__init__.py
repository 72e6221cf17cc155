"""Distributed rate limiting: a token bucket in Redis, shared by every bridge and worker process."""

from .bucket import BucketState, Grant, take
from .limits import LagSmoother, Limit
from .redis_bucket import RedisTokenBucket

__all__ = ["BucketState", "Grant", "LagSmoother", "Limit", "RedisTokenBucket", "take"]
