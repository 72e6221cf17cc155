"""Where a group's message goes: one small interface, Discord (through discord-webhook) and a generic JSON webhook.

Every request has a finite timeout. Errors never carry the webhook URL: the HTTP library's messages
are redacted and raised ``from None``, so neither a log line nor a traceback shows the secret.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from discord_webhook import DiscordWebhook

from . import render
from .events import Group
from .settings import AlertSettings


class NotifierError(Exception):
    """A message could not be sent; the text is safe to log (no webhook URL)."""


class RateLimited(NotifierError):
    """429: wait ``retry_after`` seconds before the next request."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited by the webhook: retry after {retry_after:.2f}s")
        self.retry_after = retry_after


class WebhookGone(NotifierError):
    """401/403/404: the webhook was deleted or its token is wrong; sending again will not help."""


class Notifier:
    """Sends a group's message and edits it later. ``send`` returns the message's id (None: cannot edit)."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        _protect(settings.webhook_url)

    def send(self, group: Group) -> str | None:
        raise NotImplementedError

    def update(self, message_id: str | None, group: Group) -> None:
        """Show the group's new state; by default a new message (a webhook that cannot edit)."""
        self.send(group)

    def admin_url(self, group: Group) -> str | None:
        return render.admin_url(group, self.settings.base_url, self.settings.admin_path)

    def redact(self, text: str) -> str:
        return redact(text, self.settings.webhook_url)


class DiscordNotifier(Notifier):
    """Execute with ``wait=true`` (the message id comes back), then ``PATCH …/messages/{id}`` to edit."""

    def send(self, group: Group) -> str | None:
        response = self._call(group, None)
        return str(response.json()["id"])

    def update(self, message_id: str | None, group: Group) -> None:
        if message_id is None:
            self.send(group)
        else:
            self._call(group, message_id)

    def _call(self, group: Group, message_id: str | None) -> requests.Response:
        payload = render.discord_payload(group, url=self.admin_url(group))
        webhook = DiscordWebhook(
            url=self.settings.webhook_url, content=payload["content"], embeds=payload["embeds"],
            allowed_mentions=payload["allowed_mentions"], timeout=self.settings.timeout, wait=True, rate_limit_retry=False,
        )
        try:
            if message_id is None:
                response = webhook.api_post_request()  # execute() parses and logs bodies we check ourselves
            else:
                webhook.id = message_id
                response = requests.patch(f"{self.settings.webhook_url}/messages/{message_id}", json=webhook.json,
                                          params={"wait": "true"}, timeout=self.settings.timeout)
        except requests.RequestException as error:
            raise NotifierError(f"webhook request failed: {self.redact(str(error))}") from None
        return check(response, self.redact)


class JsonWebhookNotifier(Notifier):
    """POSTs the group's facts as JSON; every look at a group is a new POST carrying the group's id."""

    def send(self, group: Group) -> str | None:
        try:
            response = requests.post(self.settings.webhook_url, json=render.json_payload(group, url=self.admin_url(group)),
                                     timeout=self.settings.timeout)
        except requests.RequestException as error:
            raise NotifierError(f"webhook request failed: {self.redact(str(error))}") from None
        check(response, self.redact)
        return None


def check(response: requests.Response, redact: Any) -> requests.Response:
    if response.status_code == 429:
        try:
            retry_after = float(response.json().get("retry_after", 1.0))
        except ValueError:
            retry_after = float(response.headers.get("Retry-After", 1.0))
        raise RateLimited(retry_after)
    if response.status_code in (401, 403, 404):
        raise WebhookGone(f"the webhook answered {response.status_code}: deleted, or a wrong URL or token")
    if response.status_code >= 300:
        raise NotifierError(f"the webhook answered {response.status_code}: {redact(response.text[:300])}")
    return response


NOTIFIERS = {"discord": DiscordNotifier, "json": JsonWebhookNotifier}


def notifier_for(settings: AlertSettings) -> Notifier:
    from kombu.utils.imports import symbol_by_name

    cls = NOTIFIERS.get(settings.notifier) or symbol_by_name(settings.notifier)
    return cls(settings)  # type: ignore[no-any-return]


def redact(text: str, url: str) -> str:
    """``text`` without the webhook URL, its path or its token (the last path segment)."""
    if not url:
        return text
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    secrets = [url, parts.path, *(s for s in parts.path.split("/") if len(s) >= 16)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "<webhook>")
    return text


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines (``POST /api/webhooks/<id>/<token>``) at DEBUG: take the secret out."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.url)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _protect(url: str) -> None:
    if not url:
        return
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests", "discord_webhook.webhook"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) and f.url == url for f in logger.filters):
            logger.addFilter(_RedactingFilter(url))
