import json
import random

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


# Every stored key, header and value must render, whatever its bytes.

DEEP_ARRAY = b"[" * 5000 + b"]" * 5000  # valid JSON, deeper than Python's recursion limit; fits the shown part


def test_json_nested_deeper_than_the_parser_can_go_is_shown_as_its_text() -> None:
    kind, text = payload.describe(DEEP_ARRAY)
    assert (kind, text) == ("text", DEEP_ARRAY.decode())
    assert "text · 10000 bytes" in str(payload.render(DEEP_ARRAY))


def test_deep_nesting_of_objects_and_of_a_value_larger_than_the_shown_part_renders() -> None:
    deep_object = b'{"a": ' * 3000 + b"1" + b"}" * 3000
    assert payload.describe(deep_object) == ("text", deep_object.decode())
    huge = b"[" * 50000 + b"]" * 50000  # the example of the report: cut, so shown as text with a note
    kind, text = payload.describe(huge)
    assert kind == "text" and text.endswith(f"{len(huge) - payload.MAX_SHOWN_BYTES} more bytes not shown")


def test_deeply_nested_header_values_and_keys_render() -> None:
    html = str(payload.render_headers([("deep", DEEP_ARRAY), ("fine", b"[1]")]))
    assert "text · 10000 bytes" in html and "json · 3 bytes" in html
    assert "text · 10000 bytes" in str(payload.render(DEEP_ARRAY))  # keys go through render() too


def test_json_whose_string_is_a_lone_surrogate_is_shown_as_text_that_the_page_can_encode() -> None:
    # "\ud800" is valid JSON (RFC 8259 escapes any code unit) but no UTF-8 page can carry the character.
    for value in (b'"\\ud800"', b'{"\\udfff": "<x>"}', b'["ok", "\\udbff\\u0041"]'):
        kind, text = payload.describe(value)
        assert (kind, text) == ("text", value.decode())
        str(payload.render(value)).encode("utf-8")


def test_json_whose_pretty_form_would_be_far_larger_than_the_value_is_shown_as_text() -> None:
    value = b"[" * 400 + b"1," * 30000 + b"1" + b"]" * 400  # 60 kB; indented 400 deep it would be 24 MB
    kind, text = payload.describe(value)
    assert (kind, text) == ("text", value.decode())
    assert len(str(payload.render(value))) < 2 * len(value)


def test_a_cut_value_that_ends_inside_a_character_is_still_shown_as_text() -> None:
    value = "€".encode() * 30000  # 3 bytes each: the shown part ends inside one
    kind, text = payload.describe(value)
    assert kind == "text"
    shown, note = text.split("\n… ")
    assert shown == "€" * (payload.MAX_SHOWN_BYTES // 3)
    assert note == f"{len(value) - payload.MAX_SHOWN_BYTES} more bytes not shown"


def test_many_random_byte_strings_all_render_as_what_they_are() -> None:
    rng = random.Random(20260106)
    values = [_random_value(rng) for _ in range(3000)] + [_random_value_around_the_cut(rng) for _ in range(40)]
    for data in values:
        kind, text = payload.describe(data)
        html = str(payload.render(data))
        html.encode("utf-8")  # the page can be sent
        assert html.count("<") == 6, f"markup leaked from {data[:80]!r}"  # only the template's own tags
        if kind == "json":
            assert _canonical(json.loads(text)) == _canonical(json.loads(data)), data[:80]
        elif kind == "text" and len(data) <= payload.MAX_SHOWN_BYTES:
            assert text == data.decode("utf-8")
        elif kind == "hex":
            assert _not_utf8(data[: payload.MAX_SHOWN_BYTES - 3])
        else:
            assert kind == "text", (kind, data[:80])


def _random_value(rng: random.Random) -> bytes:
    pick = rng.randrange(6)
    if pick == 0:
        return rng.randbytes(rng.randrange(64))
    if pick == 1:  # JSON-looking noise: mostly invalid, sometimes valid
        return "".join(rng.choice('[]{}",:0123456789.eE+- \\utrfalsnNIiy<>&') for _ in range(rng.randrange(80))).encode()
    if pick == 2:
        return json.dumps(_random_document(rng, 4), ensure_ascii=rng.random() < 0.5).encode()
    if pick == 3:  # deep nesting of arrays and objects, possibly unbalanced
        depth = rng.choice([10, 500, 999, 1001, 3000, 20000])
        opener, closer = rng.choice([(b"[", b"]"), (b'{"k":', b"}"), (b'[{"<a>":', b"}]")])
        return opener * depth + b"0" + closer * (depth - rng.choice([0, 0, 1]))
    if pick == 4:  # lone surrogate escapes inside otherwise valid JSON
        return b'{"s": "\\ud8' + f"{rng.randrange(256):02x}".encode() + b'", "<b>": [1, "\\udc00"]}'
    return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x110000)]))
                   for _ in range(rng.randrange(60))).encode()


def _random_value_around_the_cut(rng: random.Random) -> bytes:
    size = payload.MAX_SHOWN_BYTES + rng.randrange(-4, 5)  # text, JSON or binary that may be cut mid-character
    return rng.choice([b'"' + "é€".encode() * (size // 5) + b'"', "€".encode() * (size // 3), rng.randbytes(size), b"<" * size])


def _random_document(rng: random.Random, depth: int) -> object:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([None, True, 1, -2.5, 1e300, "<script>x</script>", "ü\x00\n", ""])
    if rng.random() < 0.5:
        return [_random_document(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {f"k{rng.randrange(9)}<": _random_document(rng, depth - 1) for _ in range(rng.randrange(4))}


def _canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True)  # compares NaN and Infinity too


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
