"""A run that shares its services with a concurrent run (KB_SHARED_SERVICES=1, scripts/test's group "shared")
never stops, kills or freezes one: the test is told to carry the ``outage`` marker instead (no service is touched)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

import pytest

from tests import support

REFUSAL = r"this run shares its services with a concurrent run \(KB_SHARED_SERVICES=1\): mark the test `outage`"


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """KB_SHARED_SERVICES=1, and scripts/services replaced by a recorder of what would have run."""
    monkeypatch.setenv(support.SHARED_SERVICES, "1")
    calls: list[list[str]] = []

    def run(argv: list[str], **_: object) -> None:
        calls.append(list(argv))
        raise AssertionError(f"scripts/services was run: {argv}")

    monkeypatch.setattr(support.subprocess, "run", run)
    return calls


@pytest.mark.parametrize("action, service", [("down", "redis"), ("kill", "kafka"), ("freeze", "redis"), ("up", "kafka-cluster"),
                                             ("kill", "kafka-cluster/2"), ("wipe", "redis")])
def test_control_service_refuses_on_shared_services(shared: list[list[str]], action: str, service: str) -> None:
    with pytest.raises(AssertionError, match=REFUSAL):
        support.control_service(action, service)
    assert shared == []


@pytest.mark.parametrize("fault", [lambda: support.outage("postgres"), lambda: support.outage("redis", lose_data=True),
                                   lambda: support.killed("kafka"), lambda: support.frozen("redis")],
                         ids=["outage", "outage-lose-data", "killed", "frozen"])
def test_outages_refuse_before_their_block_runs(shared: list[list[str]], fault: Callable[[], AbstractContextManager[None]]) -> None:
    entered = False
    with pytest.raises(AssertionError, match=REFUSAL):
        with fault():
            entered = True
    assert not entered and shared == []
