"""The completion ledger's Lua scripts on a real Redis: what a worker and the bridge learn from each other."""

from __future__ import annotations

import os
from typing import Iterator

import pytest
import redis
from redis.crc import key_slot

from kafkabridge import MessageId
from kafkabridge.completion import CompletionLedger
from tests.support import wait_until

TOPIC = "orders"


@pytest.fixture
def client(services: None) -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))


@pytest.fixture
def ledger(client: redis.Redis, ns: str) -> Iterator[CompletionLedger]:
    yield CompletionLedger(client, group="g", prefix=f"{ns}:completion")
    for key in client.scan_iter(f"{ns}:completion:*", count=1000):
        client.delete(key)


def at(offset: int, partition: int = 0) -> MessageId:
    return MessageId(TOPIC, partition, offset)


def test_a_first_run_is_told_to_run_and_holds_a_lease(ledger: CompletionLedger) -> None:
    begin = ledger.begin(at(5), "t1", lease_seconds=30)
    assert (begin.verdict, begin.attempts_used, begin.crashes) == ("run", 0, 0)
    progress = ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)]
    assert progress.done == frozenset() and 28 < progress.leases[5] <= 30


def test_a_finished_message_is_a_duplicate_and_its_lease_is_gone(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "t1", lease_seconds=30)
    ledger.finish([at(5)])
    assert ledger.begin(at(5), "t1", lease_seconds=30).verdict == "done"
    progress = ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)]
    assert progress.done == {5} and progress.leases == {}


def test_offsets_below_the_committed_floor_are_final(ledger: CompletionLedger) -> None:
    ledger.advance({(TOPIC, 0): 100})
    assert ledger.begin(at(99), "t1", lease_seconds=30).verdict == "done"
    assert ledger.begin(at(100), "t1", lease_seconds=30).verdict == "run"


def test_advancing_the_floor_drops_the_outcomes_below_it(ledger: CompletionLedger, client: redis.Redis) -> None:
    ledger.finish([at(1), at(2), at(7)])
    ledger.advance({(TOPIC, 0): 3})
    assert sorted(int(x) for x in client.zrange(ledger.keys(TOPIC, 0)["done"], 0, -1)) == [7]
    ledger.finish([at(2)])  # a late outcome below the floor is not added back
    assert client.zcard(ledger.keys(TOPIC, 0)["done"]) == 1


def test_a_dispatch_claimed_again_makes_the_older_copy_stand_down(ledger: CompletionLedger) -> None:
    ledger.claim({(TOPIC, 0): [5]}, "old")
    assert ledger.begin(at(5), "old", lease_seconds=30).verdict == "run"
    ledger.retry_scheduled(at(5), "old", attempts=1, lease_seconds=30)  # the old copy waits for its retry
    ledger.claim({(TOPIC, 0): [5]}, "new")
    assert ledger.begin(at(5), "old", lease_seconds=30).verdict == "superseded"
    new = ledger.begin(at(5), "new", lease_seconds=30)
    assert new.verdict == "run" and new.crashes == 0, "a different dispatch's run is no crash"


def test_a_run_of_the_same_dispatch_that_never_ended_counts_as_a_crash(ledger: CompletionLedger) -> None:
    assert ledger.begin(at(5), "t1", lease_seconds=30).crashes == 0
    assert ledger.begin(at(5), "t1", lease_seconds=30).crashes == 1
    assert ledger.begin(at(5), "t1", lease_seconds=30).crashes == 2


def test_a_waiting_retry_keeps_its_attempts_and_is_no_crash(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "t1", lease_seconds=30)
    assert ledger.retry_scheduled(at(5), "t1", attempts=1, lease_seconds=120)
    assert 118 < ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)].leases[5] <= 120
    again = ledger.begin(at(5), "t1", lease_seconds=30)
    assert (again.verdict, again.attempts_used, again.crashes) == ("run", 1, 0)
    ledger.retry_scheduled(at(5), "t1", attempts=2, lease_seconds=120)
    ledger.claim({(TOPIC, 0): [5]}, "t2")  # a re-dispatch goes on counting attempts
    assert ledger.begin(at(5), "t2", lease_seconds=30).attempts_used == 2


def test_a_superseded_copy_that_fails_schedules_no_retry_and_lets_the_new_one_run(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "old", lease_seconds=30)
    ledger.claim({(TOPIC, 0): [5]}, "new")  # while the old copy runs
    assert ledger.begin(at(5), "new", lease_seconds=30).verdict == "busy"
    assert not ledger.retry_scheduled(at(5), "old", attempts=1, lease_seconds=120)
    new = ledger.begin(at(5), "new", lease_seconds=30)
    assert (new.verdict, new.attempts_used, new.crashes) == ("run", 1, 0), "the old copy's attempt was spent: it counts"


def test_an_expired_lease_reads_as_negative_time_left(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "t1", lease_seconds=0.05)
    left = lambda: ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)].leases[5]  # noqa: E731
    assert left() <= 0.05
    wait_until(lambda: left() < 0, timeout=5, what="the lease to run out on Redis' clock", interval=0.02)


def test_progress_says_when_redis_has_lost_the_floor(ledger: CompletionLedger, client: redis.Redis) -> None:
    assert not ledger.progress({(TOPIC, 0): [1]})[(TOPIC, 0)].floor_known
    ledger.advance({(TOPIC, 0): 1})
    assert ledger.progress({(TOPIC, 0): [1]})[(TOPIC, 0)].floor_known
    client.delete(*ledger.keys(TOPIC, 0).values())
    assert not ledger.progress({(TOPIC, 0): [1]})[(TOPIC, 0)].floor_known


def test_scripts_still_run_after_redis_forgot_them(ledger: CompletionLedger, client: redis.Redis) -> None:
    client.script_flush()
    assert ledger.begin(at(5), "t1", lease_seconds=30).verdict == "run"
    client.script_flush()
    ledger.advance({(TOPIC, 0): 3})
    client.script_flush()
    ledger.finish([at(5), at(7, partition=1)])  # two partitions: a pipeline of EVALSHA, repeated as EVAL
    assert ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)].done == {5}
    assert ledger.progress({(TOPIC, 1): [7]})[(TOPIC, 1)].done == {7}


def test_every_key_of_a_partition_is_in_one_cluster_slot(ledger: CompletionLedger) -> None:
    slots = {key_slot(key.encode()) for key in ledger.keys(TOPIC, 3).values()}
    assert len(slots) == 1
    assert ledger.keys(TOPIC, 3) != ledger.keys(TOPIC, 4)


def test_a_new_dispatch_waits_while_the_older_run_holds_a_live_lease(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "old", lease_seconds=30)
    ledger.claim({(TOPIC, 0): [5]}, "new")
    busy = ledger.begin(at(5), "new", lease_seconds=30)
    assert busy.verdict == "busy" and 28 < busy.wait <= 30
    ledger.finish([at(5)])  # the older run ends: the new copy is a duplicate
    assert ledger.begin(at(5), "new", lease_seconds=30).verdict == "done"


def test_a_new_dispatch_runs_once_the_older_runs_lease_ran_out(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "old", lease_seconds=0.05)
    ledger.claim({(TOPIC, 0): [5]}, "new")
    runs: list = []
    wait_until(lambda: runs.append(ledger.begin(at(5), "new", lease_seconds=30)) or runs[-1].verdict == "run", timeout=5,
               what="the older lease to run out", interval=0.02)
    assert runs[-1].crashes == 1, "the older run began, never ended and its lease ran out: a crash"
    assert ledger.begin(at(5), "new", lease_seconds=30).crashes == 2, "and its own unfinished run counts too"


def test_claiming_drops_a_lease_that_ran_out_but_keeps_a_live_one(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "dead", lease_seconds=0.05)
    ledger.begin(at(6), "alive", lease_seconds=30)
    wait_until(lambda: ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)].leases[5] < 0, timeout=5,
               what="the lease of 5 to run out", interval=0.02)
    ledger.claim({(TOPIC, 0): [5, 6]}, "new", again=True)
    leases = ledger.progress({(TOPIC, 0): [5, 6]})[(TOPIC, 0)].leases
    assert 5 not in leases, "the new dispatch of 5 is judged on its own"
    assert leases[6] > 0
    fresh = ledger.begin(at(5), "new", lease_seconds=30)
    assert fresh.verdict == "run" and fresh.crashes == 1, "the run whose lease ran out never ended: a crash"
    assert ledger.begin(at(6), "new", lease_seconds=30).verdict == "busy"


def test_a_waiting_retry_whose_lease_ran_out_is_no_crash(ledger: CompletionLedger) -> None:
    ledger.begin(at(5), "old", lease_seconds=30)
    ledger.retry_scheduled(at(5), "old", attempts=1, lease_seconds=0.05)  # its worker died while it waited
    wait_until(lambda: ledger.progress({(TOPIC, 0): [5]})[(TOPIC, 0)].leases[5] < 0, timeout=5,
               what="the lease to run out", interval=0.02)
    ledger.claim({(TOPIC, 0): [5]}, "new", again=True)
    again = ledger.begin(at(5), "new", lease_seconds=30)
    assert (again.verdict, again.attempts_used, again.crashes) == ("run", 1, 0)


def test_a_fresh_batch_is_claimed_as_one_range_per_partition(ledger: CompletionLedger, client: redis.Redis) -> None:
    ledger.claim({(TOPIC, 0): range(100, 600), (TOPIC, 1): [7, 8, 10]}, "t1")
    assert client.zrange(ledger.keys(TOPIC, 0)["claims"], 0, -1) == [b"100:599:t1"]
    assert client.zrange(ledger.keys(TOPIC, 1)["claims"], 0, -1) == [b"7:8:t1", b"10:10:t1"]
    assert ledger.begin(at(350), "t1", lease_seconds=30).verdict == "run"
    assert ledger.begin(at(351), "other", lease_seconds=30).verdict == "superseded"
    assert ledger.begin(at(600), "other", lease_seconds=30).verdict == "run", "past the range nobody has claimed it"


def test_a_newer_claim_cuts_the_older_ranges_it_overlaps(ledger: CompletionLedger, client: redis.Redis) -> None:
    ledger.claim({(TOPIC, 0): range(100, 200)}, "old")
    ledger.claim({(TOPIC, 0): range(200, 300)}, "mid")
    ledger.claim({(TOPIC, 0): [150, 151, 199, 200, 250]}, "new", again=True)  # re-dispatched here and there
    claims = [m.decode() for m in client.zrange(ledger.keys(TOPIC, 0)["claims"], 0, -1)]
    assert claims == ["100:149:old", "150:151:new", "152:198:old", "199:200:new", "201:249:mid", "250:250:new", "251:299:mid"]
    owners = {o: [v for v in ("old", "mid", "new") if ledger.begin(at(o), v, lease_seconds=30).verdict == "run"]
              for o in (100, 150, 152, 199, 200, 201, 250, 299)}
    assert owners == {100: ["old"], 150: ["new"], 152: ["old"], 199: ["new"], 200: ["new"], 201: ["mid"], 250: ["new"], 299: ["mid"]}


def test_claims_wholly_below_the_committed_floor_are_dropped(ledger: CompletionLedger, client: redis.Redis) -> None:
    ledger.claim({(TOPIC, 0): range(0, 10)}, "a")
    ledger.claim({(TOPIC, 0): range(10, 20)}, "b")
    ledger.advance({(TOPIC, 0): 15})
    assert client.zrange(ledger.keys(TOPIC, 0)["claims"], 0, -1) == [b"10:19:b"]


def test_offsets_past_a_hundred_trillion_keep_their_digits(ledger: CompletionLedger, client: redis.Redis) -> None:
    big = 123_456_789_012_345
    ledger.claim({(TOPIC, 0): range(big - 1, big + 2)}, "a")
    ledger.claim({(TOPIC, 0): [big]}, "b", again=True)
    claims = [m.decode() for m in client.zrange(ledger.keys(TOPIC, 0)["claims"], 0, -1)]
    assert claims == [f"{big - 1}:{big - 1}:a", f"{big}:{big}:b", f"{big + 1}:{big + 1}:a"]


def test_a_superseded_copy_records_its_attempt_before_it_stands_down(ledger: CompletionLedger) -> None:
    ledger.claim({(TOPIC, 0): [5]}, "old")
    ledger.begin(at(5), "old", lease_seconds=30)
    ledger.retry_scheduled(at(5), "old", attempts=1, lease_seconds=30)
    assert ledger.begin(at(5), "old", lease_seconds=30).attempts_used == 1
    ledger.claim({(TOPIC, 0): [5]}, "new", again=True)  # re-dispatched while the old copy's second run goes on
    assert not ledger.retry_scheduled(at(5), "old", attempts=2, lease_seconds=30)
    assert ledger.begin(at(5), "new", lease_seconds=30).attempts_used == 2


def test_a_begin_records_the_outcomes_it_carries_in_the_same_round_trip(ledger: CompletionLedger) -> None:
    ledger.claim({(TOPIC, 0): [5, 6], (TOPIC, 1): [9]}, "t1")
    ledger.begin(at(5), "t1", lease_seconds=30)
    ledger.begin(at(9, partition=1), "t1", lease_seconds=30)
    begin = ledger.begin(at(6), "t1", lease_seconds=30, finished=[at(5), at(9, partition=1)])
    assert begin.verdict == "run"
    assert ledger.progress({(TOPIC, 0): [5, 6]})[(TOPIC, 0)].done == {5}
    assert ledger.progress({(TOPIC, 1): [9]})[(TOPIC, 1)].done == {9}
