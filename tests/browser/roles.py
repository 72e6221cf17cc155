"""Users of the browser tests, one per console role, in the ready-made groups of ``manage.py kafkabridge_roles``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

GROUPS = {  # role → its ready-made group (kafkabridge.contrib.django.roles)
    "viewer": "Kafka failures: viewers",
    "operator": "Kafka failures: operators",
    "editor": "Kafka failures: editors",
}


@dataclass(frozen=True)
class Operator:
    username: str
    password: str
    role: str


def make_operators(prefix: str) -> dict[str, Operator]:
    """A staff user per role, member of its group only, made as an administrator would: run the command, add people."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("kafkabridge_roles", verbosity=0)
    operators = {}
    for role, group in GROUPS.items():
        operator = Operator(f"{prefix}-{role}", secrets.token_urlsafe(12), role)
        user = User.objects.create_user(operator.username, password=operator.password, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        operators[role] = operator
    return operators
