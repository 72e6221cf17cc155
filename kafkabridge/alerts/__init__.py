"""Grouped chat alerts (Discord, or any JSON webhook) from hook events; no Django in here.

``AlertHooks`` (hooks.py) turns events into :class:`AlertEvent` s and hands them to this process's
:class:`AlertSender` (sender.py), which records them in Redis groups (groups.py) on one background
thread and sends or edits one message per group on another, through a :class:`Notifier`
(notifiers.py); render.py builds the message within Discord's limits. See docs/alerts.md.
"""

from .events import AlertEvent
from .hooks import AlertHooks
from .notifiers import DiscordNotifier, JsonWebhookNotifier, Notifier, NotifierError, RateLimited, WebhookGone
from .settings import AlertSettings

__all__ = [
    "AlertEvent", "AlertHooks", "AlertSettings", "DiscordNotifier", "JsonWebhookNotifier", "Notifier",
    "NotifierError", "RateLimited", "WebhookGone",
]
