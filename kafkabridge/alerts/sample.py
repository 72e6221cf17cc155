"""A sample alert, sent at once (no grouping, no Redis), so an operator can check the wiring."""

from __future__ import annotations

import time

from ..errors import ConfigurationError
from .events import DEAD_LETTER, Group
from .notifiers import notifier_for
from .settings import WEBHOOK_URL_VARIABLE, AlertSettings


def sample_group() -> Group:
    now = time.time()
    examples = tuple({"id": f"kafkabridge.test/0@{i}", "key": f"order-{i}", "attempts": 3, "exception": "RuntimeError",
                      "message": "this is a test alert from `manage.py sendtestalert`: nothing failed"} for i in range(3))
    return Group(id="sendtestalert", kind=DEAD_LETTER, topic="kafkabridge.test", exception="builtins.RuntimeError", count=3,
                 resolved=0, first=now - 60, last=now, touched=now, examples=examples)


def send_test_alert(settings: AlertSettings) -> str | None:
    """Send the sample; returns the message id (None: the notifier cannot edit). Raises
    :class:`~kafkabridge.alerts.NotifierError` (its text is safe to show) or ConfigurationError."""
    if not settings.enabled:
        raise ConfigurationError(
            f"no webhook URL: set the environment variable {WEBHOOK_URL_VARIABLE} (or KAFKABRIDGE['ALERTS']['WEBHOOK_URL'])"
        )
    return notifier_for(settings).send(sample_group())
