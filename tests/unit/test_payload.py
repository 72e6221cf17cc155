from kafkabridge.contrib.django import payload


def test_json_is_pretty_printed_and_escaped() -> None:
    html = str(payload.render(b'{"b": "<script>alert(1)</script>", "a": 1}'))
    assert "json · " in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert '&quot;a&quot;: 1' in html


def test_text_that_is_not_json_is_shown_as_escaped_text() -> None:
    html = str(payload.render(b"<b>plain</b> text"))
    assert "text · 17 bytes" in html and "&lt;b&gt;plain&lt;/b&gt;" in html


def test_bytes_that_are_not_utf8_are_shown_as_hex() -> None:
    kind, text = payload.describe(b"\xff\x00abc")
    assert kind == "hex"
    assert text.startswith("00000000  ff 00 61 62 63") and text.endswith("..abc")


def test_null_is_shown_as_null() -> None:
    assert "null" in str(payload.render(None))


def test_large_values_are_cut_with_a_note() -> None:
    kind, text = payload.describe(b"x" * (payload.MAX_SHOWN_BYTES + 10))
    assert kind == "text" and text.endswith("10 more bytes not shown")


def test_header_names_and_values_are_escaped() -> None:
    html = str(payload.render_headers([("<h>", b"<v>"), ("bin", b"\xff")]))
    assert "&lt;h&gt;" in html and "&lt;v&gt;" in html and "<h>" not in html
    assert "00000000  ff" in html
