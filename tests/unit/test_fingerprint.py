"""Failure fingerprints: the same error on different messages groups together; different errors do not."""

from __future__ import annotations

import pytest

from kafkabridge.dead_letter.fingerprint import MAX_NORMALISED_CHARS, fingerprint, normalise


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("order 12345 not found", "order <num> not found"),
        ("mail to bob.smith+x@example.co.uk bounced", "mail to <email> bounced"),
        ("GET https://api.example.com/orders/42?x=1 returned 503", "GET <url> returned <num>"),
        ("no row 550e8400-e29b-41d4-a716-446655440000", "no row <uuid>"),
        ("object at 0x7f3a2b10 and digest 9f86d081884c7d65", "object at <hex> and digest <hex>"),
        ("at 2024-01-02T10:11:12.5+02:00", "at <datetime>"),
        ("connect to 10.0.0.1:5432 refused", "connect to <ip> refused"),
        ("missing key 'sku-42' in \"line 3\"", "missing key <str> in <str>"),
        ("price -12.5e3 below 0", "price <num> below <num>"),
        ("  spaces\n\tcollapse  ", "spaces collapse"),
        ("v2 api and x3 stay", "v2 api and x3 stay"),
    ],
)
def test_variable_parts_of_a_message_become_placeholders(message: str, normalised: str) -> None:
    assert normalise(message) == normalised


def test_failures_that_differ_only_in_ids_share_a_fingerprint() -> None:
    first = fingerprint("shop.tasks.charge", "builtins.KeyError", "order 17 has no customer 3f2a9c1e-0000-4000-8000-000000000001")
    second = fingerprint("shop.tasks.charge", "builtins.KeyError", "order 90210 has no customer 0b7c5e2d-1111-4111-8111-111111111111")
    assert first == second and len(first) == 40


@pytest.mark.parametrize(
    ("handler", "exception_class", "message"),
    [
        ("shop.tasks.refund", "builtins.KeyError", "order 17 has no customer"),
        ("shop.tasks.charge", "builtins.ValueError", "order 17 has no customer"),
        ("shop.tasks.charge", "builtins.KeyError", "order 17 has no address"),
    ],
)
def test_another_handler_exception_or_message_is_another_group(handler: str, exception_class: str, message: str) -> None:
    assert fingerprint(handler, exception_class, message) != fingerprint("shop.tasks.charge", "builtins.KeyError", "order 17 has no customer")


def test_only_the_start_of_a_long_message_counts() -> None:
    head = "x" * MAX_NORMALISED_CHARS
    assert fingerprint("h", "E", head + " tail one") == fingerprint("h", "E", head + " tail two")
