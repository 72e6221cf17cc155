"""A group as a Discord message, within Discord's limits; user data escaped, mentions disabled.

Limits (discord-api-docs, message.mdx §Embed Limits): content 2,000; 10 embeds; title 256;
description 4,096; 25 fields; field name 256, value 1,024; footer 2,048; author 256; 6,000
characters across all embeds. Over a limit the text is cut with an ellipsis, never rejected.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlencode

from .events import BRIDGE_STOPPED, DEAD_LETTER, FAILURE_KINDS, LAG, OUTAGE, PRODUCE_FAILED, RATE_LIMITED, REQUEUE_FAILED, Group

CONTENT, TITLE, DESCRIPTION, FIELDS, FIELD_NAME, FIELD_VALUE, FOOTER, EMBEDS, TOTAL = 2000, 256, 4096, 25, 256, 1024, 2048, 10, 6000
ELLIPSIS = "…"
NO_MENTIONS = {"parse": []}
"""``allowed_mentions`` of every execute and edit: a payload saying @everyone pings no one."""
COLOURS = {"open": 0xE74C3C, "quiet": 0x95A5A6, "resolved": 0x2ECC71}
TITLES = {
    DEAD_LETTER: "dead-lettered", REQUEUE_FAILED: "failed again after a requeue", RATE_LIMITED: "held by a rate limit",
    LAG: "lagging", PRODUCE_FAILED: "not delivered by the producer", OUTAGE: "unreachable",
    BRIDGE_STOPPED: "bridge stopped unexpectedly",
}
_RECORD_ID = re.compile(r"[A-Za-z0-9._-]+/\d+@\d+")
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()<-])")


def escape(text: str) -> str:
    """Markdown and mentions in user data shown as typed: a backslash before markup, a zero-width space after @."""
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "@\u200b")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def admin_url(group: Group, base_url: str, admin_path: str) -> str | None:
    """The admin change list filtered to exactly this group's failures, or None (no BASE_URL, not failures)."""
    if not base_url or group.kind not in FAILURE_KINDS:
        return None
    query = {
        "source_topic": group.topic, "exception_class": group.exception, "status__exact": "failed",
        # a millisecond either side: epoch floats may round the stored microseconds
        "last_failed_at__gte": _iso(group.first - 0.001), "last_failed_at__lte": _iso(group.last + 0.001),
    }
    return f"{base_url.rstrip('/')}{admin_path}?{urlencode(query)}"


def discord_payload(group: Group, *, url: str | None) -> dict[str, Any]:
    """The message of ``group``: one embed, the count, first/last seen, examples, the admin link."""
    status = {"open": "still happening", "quiet": "quiet: nothing new since the last event",
              "resolved": "resolved: every failure was requeued and handled" if group.kind in FAILURE_KINDS else "recovered"}[group.status]
    short_exception = group.exception.rsplit(".", 1)[-1] or "no exception"
    title = f"{'✅' if group.status == 'resolved' else '🔴' if group.status == 'open' else '⏸'} {group.count} × {group.topic} {TITLES.get(group.kind, group.kind)}"
    if group.kind not in (OUTAGE, LAG, BRIDGE_STOPPED):
        title += f" ({short_exception})"
    if group.kind == OUTAGE and group.status == "resolved":
        title = f"✅ {group.topic} recovered after {group.count} error(s)"
    lines = [
        f"**{group.count}** event(s) of kind `{group.kind}` on **{escape(group.topic)}**"
        + (f", exception **{escape(group.exception)}**" if group.exception else ""),
        f"First seen <t:{int(group.first)}:T>, last seen <t:{int(group.last)}:T> (<t:{int(group.last)}:R>)",
        f"Status: **{status}**" + (f" ({group.resolved} of {group.count} resolved)" if group.resolved else ""),
    ]
    if url:
        lines.append(f"[Open these {group.count} failures in the admin]({url})")
    embed: dict[str, Any] = {
        "title": cut(escape_title(title), TITLE),
        "description": cut("\n".join(lines), DESCRIPTION),
        "color": COLOURS[group.status],
        "timestamp": _iso(group.last),
        "footer": {"text": cut(f"kafkabridge alert · group {group.id}", FOOTER)},
        "fields": [_field(example) for example in group.examples[:FIELDS]],
    }
    if url:
        embed["url"] = url
    return {"content": cut(escape_title(title), CONTENT), "embeds": [fit_total(embed)], "allowed_mentions": NO_MENTIONS}


def escape_title(text: str) -> str:
    return text.replace("@", "@\u200b")


def _field(example: Mapping[str, Any]) -> dict[str, Any]:
    name = str(example.get("id") or example.get("topic") or "example")
    details = [f"{label}: {escape(str(example[key]))}" for key, label in
               (("key", "key"), ("attempts", "attempts"), ("exception", "exception"), ("message", "message"), ("reason", "reason"))
               if example.get(key) not in (None, "")]
    # a record id (topic/partition@offset) stays copyable: topic names cannot hold "@", so no mention is possible
    name = _MARKDOWN.sub(r"\\\1", name) if _RECORD_ID.fullmatch(name) else escape(name)
    return {"name": cut(name, FIELD_NAME), "value": cut("\n".join(details) or "—", FIELD_VALUE), "inline": False}


def fit_total(embed: dict[str, Any]) -> dict[str, Any]:
    """Drop examples from the end, then shorten the description, until the embed is within 6,000 characters."""
    def size() -> int:
        return (len(embed.get("title", "")) + len(embed.get("description", "")) + len(embed["footer"]["text"])
                + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]))

    while size() > TOTAL and embed["fields"]:
        embed["fields"].pop()
    if size() > TOTAL:
        embed["description"] = cut(embed["description"], max(1, len(embed["description"]) - (size() - TOTAL)))
    return embed


def json_payload(group: Group, *, url: str | None) -> dict[str, Any]:
    """The generic JSON webhook's body: the group's facts as plain fields (no markup, nothing cut but examples)."""
    return {
        "group": group.id, "kind": group.kind, "topic": group.topic, "exception": group.exception, "status": group.status,
        "count": group.count, "resolved": group.resolved, "first_seen": _iso(group.first), "last_seen": _iso(group.last),
        "examples": list(group.examples), "admin_url": url,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()
