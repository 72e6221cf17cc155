"""Showing raw Kafka bytes to an operator safely: pretty JSON when it parses, text when it decodes, hex otherwise.

Everything is escaped by ``format_html``; nothing here is ever marked safe by hand.
"""

from __future__ import annotations

import json

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

MAX_SHOWN_BYTES = 64 * 1024
PRE_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; max-height: 40em; overflow: auto; margin: 0"


def describe(data: bytes | None) -> tuple[str, str]:
    """(kind, text) for ``data``: kind is "null", "json", "text" or "hex"."""
    if data is None:
        return "null", "(null)"
    shown = data[:MAX_SHOWN_BYTES]
    suffix = f"\n… {len(data) - MAX_SHOWN_BYTES} more bytes not shown" if len(data) > MAX_SHOWN_BYTES else ""
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", _hexdump(shown) + suffix
    if not suffix:
        try:
            return "json", json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
        except ValueError:
            pass
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


def _hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for start in range(0, len(data), width):
        chunk = data[start : start + width]
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {chunk.hex(' '):<{width * 3 - 1}}  {printable}")
    return "\n".join(lines)
