"""A group becomes a Discord message within every limit, with user data escaped and no mention possible."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from kafkabridge.alerts import render
from kafkabridge.alerts.events import DEAD_LETTER, LAG, Group
from tests.alerts.fake_discord import problems_of


def group(**overrides: object) -> Group:
    values = dict(id="g1", kind=DEAD_LETTER, topic="orders", exception="builtins.RuntimeError", count=3, resolved=0,
                  first=1_790_000_000.123456, last=1_790_000_009.5, touched=1_790_000_009.6, examples=())
    values.update(overrides)
    return Group(**values)  # type: ignore[arg-type]


def example(i: int, message: str = "boom", key: str = "k") -> dict:
    return {"id": f"orders/0@{i}", "key": key, "attempts": 3, "exception": "RuntimeError", "message": message}


def test_a_ten_thousand_character_exception_and_everyone_give_a_valid_truncated_mention_free_message() -> None:
    huge = "@everyone " + "x" * 10_000
    payload = render.discord_payload(
        group(topic="@everyone", exception="@here.Boom" + "E" * 400, examples=tuple(example(i, huge, "@everyone") for i in range(30))),
        url="http://admin.example/admin/x/?a=1",
    )
    assert problems_of(payload) == []
    embed = payload["embeds"][0]
    assert len(embed["fields"]) <= 25 and any(f["value"].endswith("…") for f in embed["fields"])
    text = str(payload)
    assert "@everyone" not in text and "@here" not in text  # and allowed_mentions parses nothing anyway
    assert payload["allowed_mentions"] == {"parse": []}


def test_markdown_in_user_data_is_escaped() -> None:
    assert render.escape("**bold** _it_ `code` [link](http://x) <@123> # h") == (
        r"\*\*bold\*\* \_it\_ \`code\` \[link\]\(http://x\) \<@" + "\u200b" + r"123\> \# h"
    )


def test_the_total_of_the_embed_stays_within_six_thousand_characters() -> None:
    payload = render.discord_payload(group(examples=tuple(example(i, "y" * 2000) for i in range(25))), url=None)
    embed = payload["embeds"][0]
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000 and problems_of(payload) == []


def test_the_admin_link_filters_on_topic_exception_status_and_the_groups_time_span() -> None:
    url = render.admin_url(group(), "https://ops.example.com/", "/admin/kafkabridge_failures/failedmessage/")
    assert url is not None and url.startswith("https://ops.example.com/admin/kafkabridge_failures/failedmessage/?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["source_topic"] == "orders" and query["exception_class"] == "builtins.RuntimeError"
    assert query["status__exact"] == "failed"
    span = datetime.fromisoformat(query["last_failed_at__gte"]), datetime.fromisoformat(query["last_failed_at__lte"])
    assert span[0].timestamp() <= 1_790_000_000.123456 and span[1].timestamp() >= 1_790_000_009.5  # a millisecond either side
    assert span[1] - span[0] < timedelta(seconds=9.4)
    assert render.admin_url(group(kind=LAG), "https://ops.example.com", "/a/") is None  # not failures: no list to show
    assert render.admin_url(group(), "", "/a/") is None
