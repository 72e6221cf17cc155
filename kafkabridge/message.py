"""The Kafka record a handler receives, with its bytes exactly as they were produced.

How it travels through a Celery message (the envelope) is :mod:`kafkabridge.wire`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .errors import PoisonMessage

Header = tuple[str, bytes | None]


class MessageId(NamedTuple):
    """The stable identity of a Kafka record: where it sits in the log."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka record as a handler sees it; bytes are kept exactly as they were produced.

    ``attempt`` counts deliveries of this record to its handler, starting at 1.
    ``headers`` keeps order and duplicate keys, as Kafka does.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: datetime | None = None
    attempt: int = 1
    problem: str | None = field(default=None, compare=False)
    """Why the bridge could not read part of the record (for example its headers), if it could not."""

    @property
    def id(self) -> MessageId:
        return MessageId(self.topic, self.partition, self.offset)

    def text(self, encoding: str = "utf-8") -> str:
        """The value decoded as text; a value that is not valid text is poison (dead-lettered, not retried)."""
        if self.value is None:
            raise PoisonMessage("message has no value (null)", raw=None)
        try:
            return self.value.decode(encoding)
        except UnicodeDecodeError as exc:
            raise PoisonMessage(f"value is not valid {encoding}: {exc}", raw=self.value) from exc

    def json(self, *, allow_nan: bool = False) -> Any:
        """The value parsed as JSON; a value that cannot be parsed is poison (dead-lettered, not retried).

        Poison too: nesting deeper than Python can parse, and, unless ``allow_nan``, ``NaN`` and
        ``Infinity`` (not JSON, RFC 8259) and numbers too large for a float (Python reads them as
        infinity): a handler could not write back as JSON what it parsed from them.
        """
        text = self.text()
        strict: dict[str, Any] = {} if allow_nan else {"parse_constant": _refuse_constant, "parse_float": _finite_float}
        try:
            return json.loads(text, **strict)
        except RecursionError as exc:
            raise PoisonMessage("value is JSON nested too deeply to parse", raw=self.value) from exc
        except ValueError as exc:  # JSONDecodeError, the refusals below, integers longer than Python converts
            raise PoisonMessage(f"value is not valid JSON: {exc}", raw=self.value) from exc

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka allows repeats; the last one wins, as in most clients)."""
        found = [value for key, value in self.headers if key == name]
        return found[-1] if found else None


def from_millis(timestamp_ms: int | None) -> datetime | None:
    """A Kafka timestamp as a UTC datetime; None when there is none or it does not fit one (year > 9999)."""
    if timestamp_ms is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is too large for a float")
    return number
