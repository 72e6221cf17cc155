"""Showing raw Kafka bytes to an operator safely: pretty JSON when it parses, text when it decodes, hex otherwise.

Every value renders, whatever its bytes: JSON too deeply nested to parse, JSON whose strings hold
lone surrogates (valid JSON, but not encodable as UTF-8), or JSON whose pretty form would be far
larger than the value, are shown as the text they are.
Everything is escaped by ``format_html``; nothing here is ever marked safe by hand.
"""

from __future__ import annotations

import codecs
import json
from datetime import datetime, timezone

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

MAX_SHOWN_BYTES = 64 * 1024
MAX_PRETTY_CHARS = 4 * MAX_SHOWN_BYTES
"""Pretty JSON longer than this is shown as its original text instead (indentation of deep nesting
can make a few kilobytes of JSON into megabytes of page)."""
PRE_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; max-height: 40em; overflow: auto; margin: 0"


def describe(data: bytes | None) -> tuple[str, str]:
    """(kind, text) for ``data``: kind is "null", "json", "text" or "hex"."""
    if data is None:
        return "null", "(null)"
    shown = data[:MAX_SHOWN_BYTES]
    cut = len(data) > MAX_SHOWN_BYTES
    suffix = f"\n… {len(data) - MAX_SHOWN_BYTES} more bytes not shown" if cut else ""
    text = _decode(shown, cut=cut)
    if text is None:
        return "hex", _hexdump(shown) + suffix
    pretty = None if cut else _pretty_json(text)
    if pretty is not None:
        return "json", pretty
    return "text", text + suffix


def render(data: bytes | None) -> SafeString:
    if data is None:
        return format_html("<em>{}</em>", "null")
    kind, text = describe(data)
    return format_html('<div><small>{} · {} bytes</small><pre style="{}">{}</pre></div>', kind, len(data), PRE_STYLE, text)


def render_headers(headers: list[tuple[str, bytes | None]]) -> SafeString:
    if not headers:
        return format_html("<em>{}</em>", "no headers")
    rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td></tr>", ((name, render(value)) for name, value in headers))
    return format_html("<table><tr><th>name</th><th>value</th></tr>{}</table>", rows)


def _decode(data: bytes, *, cut: bool) -> str | None:
    """``data`` as UTF-8 text, or None. A cut value may end inside a character: that partial character is left out."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=not cut)
    except UnicodeDecodeError:
        return None


def _pretty_json(text: str) -> str | None:
    """``text`` parsed and indented, or None when it is not JSON that can be shown as such."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, sort_keys=True)
    chunks: list[str] = []
    size = 0
    try:
        for chunk in encoder.iterencode(json.loads(text)):
            size += len(chunk)
            if size > MAX_PRETTY_CHARS:
                return None
            chunks.append(chunk)
        pretty = "".join(chunks)
        pretty.encode("utf-8")  # "\ud800" is valid JSON, but a lone surrogate cannot go into the page
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError; deep nesting is a RecursionError
        return None
    return pretty


def _hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for start in range(0, len(data), width):
        chunk = data[start : start + width]
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {chunk.hex(' '):<{width * 3 - 1}}  {printable}")
    return "\n".join(lines)


def render_attempts(history: list[dict]) -> SafeString:
    """A failure's attempts (oldest first) as a table: when, where, how long, what was raised."""
    if not history:
        return format_html("<em>{}</em>", "no attempts recorded (written before attempt history existed)")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
        (
            (
                attempt.get("number", "?"),
                _when(attempt.get("started_at")),
                attempt.get("host", ""),
                f"{attempt['seconds']:.3f} s" if isinstance(attempt.get("seconds"), (int, float)) else "",
                attempt.get("exception_class", ""),
                attempt.get("exception_message", ""),
            )
            for attempt in history
        ),
    )
    return format_html(
        '<table id="kb-attempts"><caption>Attempt history</caption><thead><tr><th>#</th><th>started</th><th>host</th>'
        "<th>duration</th><th>exception</th><th>message</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _when(epoch: object) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
