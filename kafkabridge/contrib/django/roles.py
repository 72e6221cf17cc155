"""Ready-made groups for the console's roles: each a set of the failure permissions, made by ``manage.py kafkabridge_roles``.

A command rather than a data migration: permissions only exist after ``migrate`` has run its
post-migrate step, and a command can be run again to repair a group someone edited.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from .perms import APP_LABEL

ROLES: dict[str, tuple[str, ...]] = {
    "Kafka failures: viewers": ("view",),
    "Kafka failures: operators": ("view", "requeue"),
    "Kafka failures: editors": ("view", "requeue", "edit_and_replay"),
    "Kafka failures: admins": ("view", "requeue", "edit_and_replay", "discard", "replay"),
}
"""Group name → console actions (``<action>_failedmessage`` permissions). Viewing also shows bulk jobs."""


def ensure_groups() -> dict[str, list[str]]:
    """Create or update each group to hold exactly its role's permissions; group name → codenames."""
    made = {}
    for name, actions in ROLES.items():
        codenames = [f"{action}_failedmessage" for action in actions]
        if "view" in actions:
            codenames.append("view_bulkjob")
        permissions = list(Permission.objects.filter(content_type__app_label=APP_LABEL, codename__in=codenames))
        missing = set(codenames) - {permission.codename for permission in permissions}
        if missing:
            raise LookupError(f"permissions {sorted(missing)} do not exist: run `manage.py migrate` first")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
        made[name] = sorted(codenames)
    return made
