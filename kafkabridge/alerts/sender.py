"""This process's side of alerting: a bounded queue and two daemon threads, so nothing waits for Redis or the webhook.

Why threads and not a Celery queue: an alert about a broken broker cannot travel through that broker,
and a thread costs no deployment. The handler's path and the consumer loop only ``put_nowait`` an
event; past ``QUEUE_SIZE`` events are dropped, counted and logged (at most every 10 s). The recorder
thread moves events into the Redis groups in batches; the flusher thread looks at due groups (any
process may: the groups are shared) and sends or edits their messages, one request at a time, each
with a timeout; a 429 makes every process wait ``retry_after`` (bounded by ``MAX_RETRY_AFTER``), a
401/404 stops sending for an hour and is reported once. Threads start at the first event of a
process (so a forked Celery pool process starts its own).

The flusher also watches for bridges that stopped unexpectedly (see :mod:`kafkabridge.alerts.watch`), and
releases deferred events: an outage is reported only once it lasted its kind's threshold.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import redis

from .events import BRIDGE_STOPPED, AlertEvent, Group
from .groups import AlertGroups
from .notifiers import Notifier, NotifierError, RateLimited, WebhookGone
from .settings import AlertSettings
from .watch import BridgeWatch

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often the flusher asks Redis for due groups: a message goes out at most this late."""
BATCH = 500
DROP_REPORT_SECONDS = 10.0
HALT = object()
"""What a look returns when no more may be sent now (a 429, a dead webhook)."""
FAILURE_RETRY_SECONDS = 10.0
"""A group whose message failed (timeout, 5xx, Redis) is looked at again this much later."""
WATCH_SECONDS = 5.0
"""At most this long between two looks for silent bridges (a third of the kind's threshold when that is shorter)."""

Item = AlertEvent | tuple[str, Any, Any]
"""What the queue carries: an event, ``("resolve", member, gid)`` or ``("beat", instance, identity)``."""


class AlertSender:
    """Queue → Redis groups → notifier, off the caller's thread."""

    def __init__(self, settings: AlertSettings, groups: AlertGroups, notifier: Notifier) -> None:
        self.settings = settings
        self.groups = groups
        self.notifier = notifier
        self.dropped = 0
        self.sent = 0
        self.watch = BridgeWatch(groups.client, settings.prefix)
        self._queue: queue.Queue[Item] = queue.Queue(settings.queue_size)
        self._deferred: dict[str, tuple[float, AlertEvent]] = {}
        self._next_watch = 0.0
        self._pid: int | None = None
        self._stop = threading.Event()
        self._last_drop_report = 0.0
        self._token = uuid.uuid4().hex
        self._lock = threading.Lock()

    def submit(self, item: Item) -> None:
        """Never blocks: an event, ``("resolve", member, gid)`` or ``("beat", instance, identity)``."""
        self.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped(1, "the alert queue is full")

    def defer(self, key: str, event: AlertEvent, delay: float) -> None:
        """Submit ``event`` in ``delay`` seconds unless :meth:`cancel` ``(key)`` comes first (an outage's threshold)."""
        self.start()
        with self._lock:
            self._deferred.setdefault(key, (time.monotonic() + delay, event))

    def deferred(self, key: str) -> bool:
        with self._lock:
            return key in self._deferred

    def cancel(self, key: str) -> bool:
        """Drop a deferred event; True when it had not been submitted yet."""
        with self._lock:
            return self._deferred.pop(key, None) is not None

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._queue, self._stop = os.getpid(), queue.Queue(self.settings.queue_size), threading.Event()
            self._token = uuid.uuid4().hex
            threading.Thread(target=self._record_loop, name="kafkabridge-alerts-recorder", daemon=True).start()
            threading.Thread(target=self._flush_loop, name="kafkabridge-alerts-sender", daemon=True).start()
            atexit.register(self.record_queued)

    def record_queued(self) -> None:
        """At exit: what is still queued goes to Redis (once, bounded by Redis' socket timeout), so another process sends it."""
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if items:
            self._record(items)

    def stop(self) -> None:
        self._stop.set()

    # recorder ---------------------------------------------------------------------------------------
    def _record_loop(self) -> None:
        while not self._stop.is_set():
            try:
                items = [self._queue.get(timeout=POLL_SECONDS)]
            except queue.Empty:
                continue
            while len(items) < BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._record(items)

    def _record(self, items: list) -> None:  # type: ignore[type-arg]
        events = [item for item in items if isinstance(item, AlertEvent)]
        try:
            if events:
                self.groups.add(events)
            for item in items:
                if isinstance(item, AlertEvent):
                    continue
                if item[0] == "beat":
                    self.watch.beat(item[1], item[2])
                else:
                    self.groups.resolve(member=item[1], gid=item[2])
        except redis.RedisError as error:
            self._dropped(len(events), f"Redis did not take them ({error!r})")

    def _dropped(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_report >= DROP_REPORT_SECONDS:
            self._last_drop_report = now
            logger.error("dropped %d alert event(s) in this process so far: %s", self.dropped, why)

    # flusher ----------------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._release_deferred()
                self._watch_bridges()
                self.flush_due()
            except redis.RedisError as error:
                logger.warning("alerts: Redis unreachable, grouped alerts wait (%r)", error)
            except Exception:
                logger.exception("alerts: the sender failed; it carries on")

    def _release_deferred(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [key for key, (at, _) in self._deferred.items() if at <= now]
            events = [self._deferred.pop(key)[1] for key in due]
        for event in events:
            self.submit(event)

    def _watch_bridges(self) -> None:
        """Report each bridge silent past the threshold (one process gets each one from Redis)."""
        if not self.settings.kind_enabled(BRIDGE_STOPPED) or time.monotonic() < self._next_watch:
            return
        threshold = self.settings.threshold(BRIDGE_STOPPED)
        self._next_watch = time.monotonic() + min(WATCH_SECONDS, threshold / 3)
        for who, last in self.watch.silent(threshold):
            seen = datetime.fromtimestamp(last, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            logger.error("bridge %s (consumer group %r) stopped unexpectedly: no heartbeat since %s",
                         who.get("instance"), who.get("group"), seen)
            self.submit(AlertEvent(BRIDGE_STOPPED, str(who.get("group", "?")), "", time.time(), {
                "id": who.get("instance"),
                "message": f"on {who.get('host')} (pid {who.get('pid')}): no heartbeat since {seen}, and no clean stop",
            }))

    def flush_due(self) -> int:
        """Look at every due group once; returns how many messages went out."""
        if self.groups.gone():
            return 0
        sent, claimed = 0, self.groups.claim(self._token)
        for index, gid in enumerate(claimed):
            outcome = self._look(gid)
            if outcome is HALT:  # a 429 or a dead webhook: give the rest back, unsent
                for rest in claimed[index + 1:]:
                    self.groups.settle(rest, self._token, "retry", delay=POLL_SECONDS)
                break
            sent += outcome
        return sent

    def _look(self, gid: str) -> int | object:
        group, now = self.groups.read(gid)
        if group is None:
            self.groups.settle(gid, self._token, "close")
            return 0
        status = "resolved" if group.resolved >= group.count else "quiet" if now - group.touched >= self.settings.quiet_after else "open"
        changed = group.count > group.sent or group.resolved > group.sent_resolved
        if status == "open" and not changed:  # nothing new yet: look again when it could go quiet
            self.groups.settle(gid, self._token, "retry", delay=group.touched + self.settings.quiet_after - now)
            return 0
        group = replace(group, status=status)
        try:
            message_id = group.message_id
            if message_id is None:
                message_id = self.notifier.send(group)
            else:
                self.notifier.update(message_id, group)
        except RateLimited as error:
            wait = min(max(error.retry_after, 0.05), self.settings.max_retry_after)
            self.groups.hold(wait)
            self.groups.settle(gid, self._token, "retry", delay=wait)
            logger.warning("alerts: the webhook rate-limits us; every sender waits %.2fs", wait)
            self._stop.wait(wait)
            return HALT
        except WebhookGone as error:
            self.groups.settle(gid, self._token, "retry", delay=FAILURE_RETRY_SECONDS)
            if self.groups.mark_gone():
                logger.error("alerts: %s. No alert is sent for an hour; fix the webhook URL (ALERTS['WEBHOOK_URL']) "
                             "and restart, or delete the Redis key %s:gone", error, self.settings.prefix)
            return HALT
        except NotifierError as error:
            self.groups.settle(gid, self._token, "retry", delay=FAILURE_RETRY_SECONDS)
            logger.warning("alerts: could not send the alert of group %s (%s); trying again in %.0fs", gid, error, FAILURE_RETRY_SECONDS)
            return 0
        self.sent += 1
        if status == "open":
            self.groups.settle(gid, self._token, "sent", sent=group.count, sent_resolved=group.resolved, message_id=message_id)
        else:  # ends the group, unless it grew while we sent: then the next look shows the new count
            self.groups.settle(gid, self._token, "close", sent=group.count, message_id=message_id)
        return 1


