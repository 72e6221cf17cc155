"""The console in the Django admin: failures (with their pages and actions), bulk jobs, rate limits.

A thin layer: every action calls a function in ``services`` or ``bulk``; the views live in ``views/``.
"""

from .bulk_jobs import BulkJobAdmin
from .failures import FailedMessageAdmin
from .rate_limits import RateLimitSettingAdmin

__all__ = ["BulkJobAdmin", "FailedMessageAdmin", "RateLimitSettingAdmin"]
