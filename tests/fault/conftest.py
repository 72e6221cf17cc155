"""Fixtures of the fault suite: a rig of worker and bridge processes on the fault settings, and the
figures of each scenario, written to tests/fault/.last-run.json for scripts/fault-report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.fault.checker import Figures
from tests.fault.rig import Rig

RESULTS = Path(__file__).parent / ".last-run.json"
SOAK = os.environ.get("KB_SOAK") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long fault runs with repeated faults; run with KB_SOAK=1")


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/fault/" not in str(item.fspath):
            continue
        if "rig" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
            # Every scenario runs in scripts/test's group "outage" (on a service set of its own), those that
            # only kill workers and bridges too: the suite's figures stay comparable, and one process alone
            # writes .last-run.json (its updates are read-modify-write).
            item.add_marker(pytest.mark.outage)
        if item.get_closest_marker("soak") and not SOAK:
            item.add_marker(pytest.mark.skip(reason="soak run: set KB_SOAK=1"))


@pytest.fixture
def rig(ns: str, logs: Path, kafka_admin: AdminClient, database: None) -> Iterator[Rig]:
    rig = Rig(ns, logs, kafka_admin)
    try:
        yield rig
    finally:
        try:
            rig.stop_all()  # first: whatever else goes wrong, no worker or bridge outlives its test
        finally:
            if rig.run is not None:
                rig.run.commits.stop()


@pytest.fixture
def report(request: pytest.FixtureRequest, record_property: Callable[[str, Any], None]) -> Callable[..., None]:
    """``report(scenario, title, fault, figures)``: printed, recorded as properties, and kept for docs/reliability.md."""

    def write(scenario: int | str, title: str, fault: str, figures: Figures) -> None:
        print(f"\n[{scenario}] {title}: {figures.summary()}")
        for name, value in figures.as_dict().items():
            if name != "problems":
                record_property(name, value)
        request.node.fault_scenario = str(scenario)
        _update(str(scenario), {
            "title": title, "fault": fault, "nodeid": request.node.nodeid, "soak": SOAK,
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"), "figures": figures.as_dict(), "status": "running",
            "load_average": round(os.getloadavg()[1], 1),  # other work on the machine slows every figure
        })

    return write


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """The scenario's entry says how its test ended (passed, failed, xfailed) and how long it took, its
    fixtures (processes, the three-broker cluster) included."""
    report = yield
    durations = item.__dict__.setdefault("fault_durations", {})
    durations[report.when] = report.duration
    scenario = getattr(item, "fault_scenario", None)
    if scenario is not None and report.when == "call":
        _update(scenario, {"status": "xfailed" if hasattr(report, "wasxfail") else report.outcome})
    if scenario is not None and report.when == "teardown":
        _update(scenario, {"test_seconds": round(sum(durations.values()), 1)})
    return report


def _update(scenario: str, fields: dict[str, Any]) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault(scenario, {}).update(fields)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
