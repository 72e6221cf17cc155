"""The console's permissions: each operator action is its own permission, so roles can be put together."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

APP_LABEL = "kafkabridge_failures"
ACTIONS = ("view", "requeue", "discard", "edit_and_replay", "replay")
"""``<action>_failedmessage`` codenames; resolving a failure needs "requeue" (an operator's call, like a requeue)."""


def allowed(user: Any, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown console action {action!r}; known ones are {ACTIONS}")
    return bool(user.has_perm(f"{APP_LABEL}.{action}_failedmessage"))


def require(user: Any, action: str) -> None:
    """Refuse (403) a user without the permission of ``action``, forged POSTs included."""
    if not allowed(user, action):
        raise PermissionDenied(f"needs the {action}_failedmessage permission")
