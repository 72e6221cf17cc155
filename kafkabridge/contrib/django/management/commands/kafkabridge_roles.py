"""``manage.py kafkabridge_roles``: create or repair the console's ready-made groups (viewers, operators, editors, admins)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...roles import ensure_groups


class Command(BaseCommand):
    help = "Create or update the groups of the failure console's roles; add users to them in the admin."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            made = ensure_groups()
        except LookupError as error:
            raise CommandError(str(error)) from error
        for name, codenames in made.items():
            self.stdout.write(f"{name}: {', '.join(codenames)}")
