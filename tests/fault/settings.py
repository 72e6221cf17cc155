"""Django settings of the worker and bridge processes the fault suite starts: the test settings plus
the fault handlers (``tests.fault.app``), a dead-letter store that also writes the run's journal, and
limits that let recovery happen within seconds.

The handlers' own limits (time limit, completion timeout, retry policy) are in ``tests.fault.app.plan``.
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, KAFKABRIDGE

INSTALLED_APPS = [*INSTALLED_APPS, "tests.fault.app"]
KAFKABRIDGE = {
    **KAFKABRIDGE,
    "HOOKS": [],  # the journal records what the checker needs; no per-retry Redis writes from hooks
    "DEAD_LETTER_STORE": "tests.fault.app.store.JournalingStore",
    # A partition holds at most this many published, unfinished messages: the queue stays short enough
    # that no message waits longer than its completion timeout (plan.COMPLETION_TIMEOUT) to start.
    # A scenario may lower it (KBFAULT_MAX_IN_FLIGHT) to have partitions held at the bound.
    "MAX_IN_FLIGHT": int(os.environ.get("KBFAULT_MAX_IN_FLIGHT", "150")),
    "SHUTDOWN_TIMEOUT": float(os.environ.get("KBFAULT_SHUTDOWN_TIMEOUT", "20")),
    # A dead or frozen worker's message comes back after its lease: the run's time limit plus this grace
    # (30 s by default). The fault handlers' runs take milliseconds; 5 s is ample on a busy machine.
    "LEASE_GRACE": float(os.environ.get("KBFAULT_LEASE_GRACE", "5")),
}
