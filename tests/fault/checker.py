"""The fault suite's checker: a stream of unique messages, the group's commits sampled, and the verdict.

One run (tests/fault/rig.py starts it with ``rig.stream(...)``)::

    run = Run(topic=..., group=..., journal=..., n=400, max_attempts=3)
    run.start()                   # produces N messages (key = id), a bounded lead ahead of the outcomes;
                                  # samples the group's committed offsets every 200 ms
    run.wait_for_outcomes(66)     # mid-stream
    run.mark_fault(); ...; run.mark_restored()    # the test's fault
    figures = run.settle()        # bounded waits: every acknowledged message final, commits at the end, quiet
    figures.assert_sound(duplicates=0)

What it asserts (``Figures.problems``):

- no loss: every message Kafka acknowledged to the producer was handled or dead-lettered (a message
  without an outcome is lost, or stuck in a loop that holds its partition's commits back);
- commits: per partition the sampled committed offset never moves backwards, and never passes a
  message whose outcome was not recorded before the sample was taken (the journal's time stamps);
- attempts: no run saw an attempt number beyond the policy's, and no message ran more distinct attempts;
- duplicates: handler runs that repeat an attempt of a message already run (a crash, a lost ledger, a
  second dispatch), counted and reported; a scenario may require zero.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from tests import support

COMMIT_SAMPLE_INTERVAL = 0.2
QUIET_SECONDS = 1.5
"""After the last outcome, no handler runs for this long before the figures are taken."""


@dataclass(frozen=True, slots=True)
class Ack:
    partition: int
    offset: int
    at: float


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    message_id: str
    partition: int
    offset: int
    attempt: int
    pid: int
    at: float
    facts: dict[str, Any]


class JournalReader:
    """Reads the journal incrementally: each call parses only the lines appended since the last one."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._events: list[Event] = []

    def events(self) -> list[Event]:
        if self._path.exists():
            with open(self._path, "rb") as journal:
                journal.seek(self._offset)
                chunk = journal.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(whole)
            self._events += [_event(line) for line in whole.splitlines() if line.strip()]
        return list(self._events)


def _event(line: bytes) -> Event:
    raw = json.loads(line)
    return Event(raw.pop("e"), raw.pop("id"), raw.pop("p"), raw.pop("o"), raw.pop("a"), raw.pop("pid"), raw.pop("t"), raw)


class Producing(threading.Thread):
    """Produces ``n`` messages with unique ids at up to ``rate`` per second, at most ``lead`` ahead of the
    outcomes in the journal (so that a fault lands mid-stream however slow the machine); records every
    message Kafka acknowledged."""

    def __init__(self, topic: str, n: int, rate: float, bootstrap: str, *, journal: Path, lead: int) -> None:
        super().__init__(daemon=True, name=f"produce {topic}")
        self.topic, self.n, self.rate, self.lead = topic, n, rate, lead
        self._journal = JournalReader(journal)
        self._outcomes = 0
        self._producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                                   "message.timeout.ms": 300_000})
        self.acked: dict[str, Ack] = {}
        self.refused: dict[str, str] = {}
        self.produced = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._held_from: int | None = None

    def hold_from(self, index: int) -> None:
        """Produce nothing from message ``index`` on until :meth:`release` (the messages before it flow as usual)."""
        self._held_from = index

    def release(self) -> None:
        self._held_from = None

    def _held(self, index: int) -> bool:
        held_from = self._held_from
        return held_from is not None and index >= held_from

    def ids(self) -> list[str]:
        return [f"m{index:06d}" for index in range(self.n)]

    def _delivered(self, error: Any, message: Any) -> None:
        message_id = message.key().decode()
        if error is None:
            self.acked[message_id] = Ack(message.partition(), message.offset(), time.time())
        else:
            self.refused[message_id] = str(error)

    def run(self) -> None:
        try:
            started = time.monotonic()
            for index, message_id in enumerate(self.ids()):
                while time.monotonic() < started + index / self.rate or index >= self._outcomes + self.lead or self._held(index):
                    self._producer.poll(0.02)
                    if index >= self._outcomes + self.lead:
                        self._outcomes = sum(1 for e in self._journal.events() if e.kind in ("ok", "dead"))
                self._produce(message_id)
                self.produced = index + 1
            while self._producer.flush(1.0):
                pass
        except BaseException as error:  # reported by Run.settle
            self.error = error
        finally:
            self.finished.set()

    def _produce(self, message_id: str) -> None:
        value = json.dumps({"id": message_id}).encode()
        while True:
            try:
                self._producer.produce(self.topic, key=message_id.encode(), value=value, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full (the broker is away): wait for room
                self._producer.poll(0.1)


class CommitWatch(threading.Thread):
    """Samples the group's committed offsets of ``topic`` every ``COMMIT_SAMPLE_INTERVAL`` seconds.

    A sample's time is taken after the answer arrived: every commit it shows was made before then.
    """

    def __init__(self, group: str, topic: str, partitions: int, bootstrap: str) -> None:
        super().__init__(daemon=True, name=f"commits of {group}")
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(COMMIT_SAMPLE_INTERVAL):
                try:
                    found = self._consumer.committed(self._partitions, timeout=2)
                except KafkaException:
                    self.failures += 1
                    continue
                self.samples.append((time.time(), {tp.partition: tp.offset for tp in found if tp.offset >= 0}))
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


@dataclass
class Figures:
    """What one scenario's run came to; ``problems`` lists every broken promise."""

    sent: int
    handled: int
    dead_lettered: int
    no_outcome: int
    """Acknowledged messages neither handled nor dead-lettered when the run ended: lost, or stuck in a loop."""
    runs: int
    duplicates: int
    duplicated_messages: int
    max_attempt: int
    recovery_s: float | None
    """Seconds from the fault until every message acknowledged before it had its outcome."""
    commits_caught_up_s: float | None
    """Seconds from the fault until the committed offsets passed every message acknowledged before it."""
    outage_s: float | None
    """Seconds the fault lasted (a service down or frozen, a process gone), when the test marked its end."""
    duration_s: float
    commit_samples: int
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}s"

        return (f"sent {self.sent}, handled {self.handled}, dead-lettered {self.dead_lettered}, no outcome {self.no_outcome}, "
                f"runs {self.runs}, duplicates {self.duplicates} (on {self.duplicated_messages} messages), "
                f"max attempt {self.max_attempt}, outage {seconds(self.outage_s)}, recovery {seconds(self.recovery_s)}, "
                f"commits caught up {seconds(self.commits_caught_up_s)}, duration {self.duration_s:.1f}s, "
                f"{self.commit_samples} commit samples" + (f"; {self.notes}" if self.notes else ""))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def assert_sound(self, *, duplicates: int | None = None) -> None:
        """No broken promise; with ``duplicates``, at most that many duplicate runs."""
        problems = list(self.problems)
        if duplicates is not None and self.duplicates > duplicates:
            problems.append(f"{self.duplicates} duplicate handler runs, at most {duplicates} allowed here")
        assert not problems, "\n".join([self.summary(), *problems])


class Run:
    """One scenario's stream: produce, watch commits, then judge (see the module docstring)."""

    def __init__(self, *, topic: str, group: str, journal: Path, n: int, rate: float = 120.0, lead: int = 200,
                 max_attempts: int, bootstrap: str = support.KAFKA, partitions: int = 3) -> None:
        self.topic, self.group, self.journal, self.n = topic, group, journal, n
        self.bootstrap, self.partitions, self.max_attempts = bootstrap, partitions, max_attempts
        self.producing = Producing(topic, n, rate, bootstrap, journal=journal, lead=lead)
        self.commits = CommitWatch(group, topic, partitions, bootstrap)
        self.fault_at: float | None = None
        self.restored_at: float | None = None
        self.started_at = 0.0
        self._journal = JournalReader(journal)

    def start(self) -> None:
        self.started_at = time.time()
        self.producing.start()
        self.commits.start()

    # -- while it runs -----------------------------------------------------------------------------

    def events(self) -> list[Event]:
        return self._journal.events()

    def finished_ids(self) -> set[str]:
        return {event.message_id for event in self.events() if event.kind in ("ok", "dead")}

    def wait_for_outcomes(self, count: int, *, timeout: float = 60) -> None:
        """Until ``count`` messages reached their outcome (the fault then lands mid-stream)."""
        support.wait_until(lambda: len(self.finished_ids()) >= count, timeout=timeout, what=f"{count} outcomes of {self.topic}")
        assert self.producing.error is None, f"the producer failed: {self.producing.error!r}"
        assert not self.producing.finished.is_set(), "the stream ended before the fault: it must land mid-stream"

    def span(self, message_ids: Iterable[str]) -> float | None:
        """Seconds from the first run of any of these messages to the last of their outcomes (their recovery,
        when the fault is the message itself); None if one has no run or no outcome."""
        events = self.events()
        wanted = set(message_ids)
        starts = [e.at for e in events if e.kind == "start" and e.message_id in wanted]
        outcomes: dict[str, float] = {}
        for e in events:
            if e.kind in ("ok", "dead") and e.message_id in wanted:
                outcomes.setdefault(e.message_id, e.at)
        if not starts or set(outcomes) != wanted:
            return None
        return round(max(outcomes.values()) - min(starts), 1)

    def mark_fault(self) -> float:
        """The fault is injected now: recovery is measured from here."""
        self.fault_at = time.time()
        return self.fault_at

    def mark_restored(self) -> None:
        """The fault is over now (the service is back, a replacement process started)."""
        self.restored_at = time.time()

    # -- the end -----------------------------------------------------------------------------------

    def settle(self, *, timeout: float = 120, dead_letter_rows: Any = None) -> Figures:
        """Waits (bounded) until production ended, every acknowledged message is final, the group committed
        every partition to its end and no handler ran for ``QUIET_SECONDS``; returns the figures. A wait
        that runs out is not raised here: it becomes a problem of the figures, which the test then reports."""
        support.wait_until(self.producing.finished.is_set, timeout=timeout, what=f"the producer of {self.topic} to finish")
        assert self.producing.error is None, f"the producer failed: {self.producing.error!r}"
        acked = dict(self.producing.acked)
        waits: list[str] = []
        if not _within(lambda: not set(acked) - self.finished_ids(), timeout):
            still_open = sorted(set(acked) - self.finished_ids())
            waits.append(f"after {timeout:.0f}s, {len(still_open)} acknowledged message(s) still had no outcome: "
                         + ", ".join(f"{m} ({acked[m].partition}@{acked[m].offset})" for m in still_open[:5]))
        ends = self.end_offsets()
        if not waits and not _within(lambda: self._committed() == ends, 60):  # unfinished messages hold commits back
            waits.append(f"the group never committed {self.topic} to its end {ends} (last sample: {self._committed()})")
        if not _within(lambda: time.time() - max(e.at for e in self.events()) >= QUIET_SECONDS, 60, interval=0.5):
            waits.append("the handlers never went quiet")
        self.commits.stop()
        figures = judge(acked, self.events(), self.commits.samples, max_attempts=self.max_attempts,
                        fault_at=self.fault_at, started_at=self.started_at, refused=self.producing.refused,
                        dead_letter_rows=dead_letter_rows)
        figures.problems[:0] = waits
        if self.fault_at is not None and self.restored_at is not None:
            figures.outage_s = round(self.restored_at - self.fault_at, 1)
        return figures

    def end_offsets(self) -> dict[int, int]:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.group}-watermarks"})
        try:
            return {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1] for p in range(self.partitions)}
        finally:
            consumer.close()

    def _committed(self) -> dict[int, int]:
        latest = self.commits.samples[-1][1] if self.commits.samples else {}
        return {p: latest.get(p, 0) for p in range(self.partitions)}


def _within(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (polled, like support.wait_until)."""
    try:
        support.wait_until(predicate, timeout=timeout, what="", interval=interval)
    except AssertionError:
        return False
    return True


def judge(
    acked: dict[str, Ack],
    events: Iterable[Event],
    samples: list[tuple[float, dict[int, int]]],
    *,
    max_attempts: int,
    fault_at: float | None,
    started_at: float,
    refused: dict[str, str] | None = None,
    dead_letter_rows: Any = None,
) -> Figures:
    """The figures of a settled run, and every promise it broke (pure: tests/fault/test_checker.py drives it)."""
    events = list(events)
    problems: list[str] = []
    runs: dict[str, list[Event]] = defaultdict(list)
    outcome_at: dict[str, float] = {}
    handled: dict[str, int] = defaultdict(int)
    dead: dict[str, int] = defaultdict(int)
    for event in events:
        if event.kind == "start":
            runs[event.message_id].append(event)
        elif event.kind in ("ok", "dead"):
            outcome_at[event.message_id] = min(event.at, outcome_at.get(event.message_id, event.at))
            (handled if event.kind == "ok" else dead)[event.message_id] += 1
    for message_id, at in (dead_letter_rows or {}).items():  # a row whose journal line a kill prevented
        dead.setdefault(message_id, 1)
        outcome_at.setdefault(message_id, at)

    lost = sorted(set(acked) - set(outcome_at))
    if lost:
        problems.append(f"NO OUTCOME: {len(lost)} acknowledged message(s) neither handled nor dead-lettered (lost, or "
                        "stuck), e.g. " + ", ".join(f"{m} ({acked[m].partition}@{acked[m].offset})" for m in lost[:5]))
    twice = sorted(m for m in outcome_at if handled.get(m, 0) + dead.get(m, 0) > 1)

    problems += _commit_problems(acked, outcome_at, samples)

    max_attempt = max((e.attempt for e in events if e.kind == "start"), default=0)
    if max_attempt > max_attempts:
        over = sorted({e.message_id for e in events if e.kind == "start" and e.attempt > max_attempts})
        problems.append(f"attempt {max_attempt} seen, the policy allows {max_attempts}: {over[:5]}")
    duplicates = 0
    duplicated: list[str] = []
    for message_id, its_runs in runs.items():
        attempts = [e.attempt for e in its_runs]
        extra = len(attempts) - len(set(attempts))
        if extra:
            duplicates += extra
            duplicated.append(message_id)
        if len(set(attempts)) > max_attempts:
            problems.append(f"{message_id} ran {len(set(attempts))} distinct attempts, the policy allows {max_attempts}")

    recovery = caught_up = None
    if fault_at is not None:
        before = [outcome_at[m] for m, ack in acked.items() if ack.at <= fault_at and m in outcome_at]
        recovery = round(max(0.0, max(before, default=fault_at) - fault_at), 1)
        caught_up = _commits_caught_up(acked, samples, fault_at)
    notes: dict[str, Any] = {}
    if refused:
        notes["refused_by_kafka"] = len(refused)
    if twice:
        notes["outcome_recorded_twice"] = len(twice)
    return Figures(
        sent=len(acked),
        handled=sum(1 for m in acked if handled.get(m)),
        dead_lettered=sum(1 for m in acked if dead.get(m) and not handled.get(m)),
        no_outcome=len(lost),
        runs=sum(len(r) for r in runs.values()),
        duplicates=duplicates,
        duplicated_messages=len(duplicated),
        max_attempt=max_attempt,
        recovery_s=recovery,
        commits_caught_up_s=caught_up,
        outage_s=None,
        duration_s=round(max(outcome_at.values(), default=started_at) - started_at, 1),
        commit_samples=len(samples),
        problems=problems,
        notes=notes,
    )


def _commits_caught_up(acked: dict[str, Ack], samples: list[tuple[float, dict[int, int]]], fault_at: float) -> float | None:
    """Seconds from ``fault_at`` to the first sample whose committed offsets pass every message acknowledged before it."""
    needed: dict[int, int] = {}
    for ack in acked.values():
        if ack.at <= fault_at:
            needed[ack.partition] = max(needed.get(ack.partition, 0), ack.offset + 1)
    for at, committed in samples:
        if at >= fault_at and all(committed.get(p, 0) >= offset for p, offset in needed.items()):
            return round(at - fault_at, 1)
    return None


def _commit_problems(acked: dict[str, Ack], outcome_at: dict[str, float], samples: list[tuple[float, dict[int, int]]]) -> list[str]:
    """Committed offsets that moved backwards, or passed a message not final when the sample was taken."""
    problems: list[str] = []
    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for message_id, ack in acked.items():
        by_partition[ack.partition].append((ack.offset, message_id))
    for offsets in by_partition.values():
        offsets.sort()
    previous: dict[int, int] = {}
    for at, committed in samples:
        for partition, offset in committed.items():
            if offset < previous.get(partition, -1):
                problems.append(f"partition {partition}: committed offset moved back from {previous[partition]} to {offset} "
                                f"(sample at {at:.3f})")
            previous[partition] = offset
            for message_offset, message_id in by_partition.get(partition, ()):
                if message_offset >= offset:
                    break
                if outcome_at.get(message_id, float("inf")) > at:
                    problems.append(f"partition {partition}: committed {offset} at {at:.3f} passed {message_id} "
                                    f"(offset {message_offset}), final only at {outcome_at.get(message_id, 'never')}")
                    break
    return problems[:20]
