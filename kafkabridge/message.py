"""The Kafka record a handler receives, and its lossless trip through a Celery message.

Celery serialises task arguments as JSON, which cannot carry bytes; the envelope carries keys,
values and header values as base64 so that binary data and invalid UTF-8 survive untouched.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .errors import PoisonMessage

ENVELOPE_VERSION = 1

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

    def json(self) -> Any:
        """The value parsed as JSON; a value that does not parse is poison (dead-lettered, not retried)."""
        text = self.text()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PoisonMessage(f"value is not valid JSON: {exc}", raw=self.value) from exc

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka allows repeats; the last one wins, as in most clients)."""
        found = [value for key, value in self.headers if key == name]
        return found[-1] if found else None

    def to_envelope(self) -> dict[str, Any]:
        """A JSON-safe dict that :meth:`from_envelope` turns back into an equal message."""
        return {
            "v": ENVELOPE_VERSION,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": _b64(self.key),
            "value": _b64(self.value),
            "headers": [[name, _b64(value)] for name, value in self.headers],
            "timestamp_ms": _millis(self.timestamp),  # an unreadable Kafka timestamp travels as None
            "problem": self.problem,
        }

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any], *, attempt: int = 1) -> Message:
        if envelope.get("v") != ENVELOPE_VERSION:
            raise ValueError(f"unsupported kafkabridge envelope version {envelope.get('v')!r}")
        timestamp_ms = envelope.get("timestamp_ms")
        return cls(
            topic=envelope["topic"],
            partition=int(envelope["partition"]),
            offset=int(envelope["offset"]),
            key=_unb64(envelope.get("key")),
            value=_unb64(envelope.get("value")),
            headers=tuple((str(name), _unb64(value)) for name, value in envelope.get("headers") or ()),
            timestamp=from_millis(timestamp_ms),
            attempt=attempt,
            problem=envelope.get("problem"),
        )


def from_millis(timestamp_ms: int | None) -> datetime | None:
    """A Kafka timestamp as a UTC datetime; None when there is none or it does not fit one (year > 9999)."""
    if timestamp_ms is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)
