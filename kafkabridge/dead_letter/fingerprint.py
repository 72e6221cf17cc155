"""Failure groups: the same bug failing on many messages gets one fingerprint.

A fingerprint hashes the handler, the exception class and the exception message with its variable
parts replaced by placeholders (``<email>``, ``<url>``, ``<uuid>``, ``<hex>``, ``<num>``, ``<str>``…),
after the parameterization Sentry applies before it groups events by message
(getsentry/sentry ``src/sentry/grouping/parameterization.py``): ordered regexes, the most specific
first, so an email's digits are not seen as numbers and a UUID's groups not as hex.
"""

from __future__ import annotations

import hashlib
import re

MAX_NORMALISED_CHARS = 500
"""Only the start of a long message is compared: the rest is usually data, not the error."""

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("email", r"""[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+"""),
        ("url", r"""\b[a-z][a-z0-9+.-]*://[^\s"'<>]+"""),
        ("uuid", r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b"),
        ("ip", r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"),
        ("datetime", r"\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?\b"),
        ("hex", r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"),
        ("str", r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""),
        ("num", r"[-+]?\b\d+(?:[.,]\d+)*(?:e[-+]?\d+)?\b"),
    )
)


def normalise(message: str) -> str:
    """``message`` with what varies from one message to the next replaced by ``<kind>`` placeholders."""
    text = message[:MAX_NORMALISED_CHARS]
    for name, pattern in _PATTERNS:
        text = pattern.sub(f"<{name}>", text)
    return " ".join(text.split())


def fingerprint(handler: str, exception_class: str, message: str) -> str:
    """A 40-hex-digit key shared by failures of ``handler`` with the same exception and normalised message."""
    parts = "\x1f".join((handler, exception_class, normalise(message)))
    return hashlib.sha1(parts.encode("utf-8", errors="replace")).hexdigest()
