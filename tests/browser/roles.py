"""Users of the browser tests, one per console role, made in the database the server uses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

ROLES = {  # role → the failedmessage permissions it holds
    "viewer": ("view",),
    "operator": ("view", "requeue", "discard"),
    "editor": ("view", "requeue", "discard", "edit_and_replay"),
}


@dataclass(frozen=True)
class Operator:
    username: str
    password: str
    role: str


def make_operator(username: str, role: str) -> Operator:
    """A staff user holding the permissions of ``role`` (and nothing else)."""
    from django.contrib.auth.models import Permission, User

    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username, password=password, is_staff=True)
    codenames = [f"{action}_failedmessage" for action in ROLES[role]]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="kafkabridge_failures", codename__in=codenames))
    return Operator(username, password, role)
