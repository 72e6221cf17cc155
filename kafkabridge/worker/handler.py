"""``@kafka_handler``: a user's function becomes the Celery task that handles one Kafka topic.

The task runs the function on a :class:`~kafkabridge.message.Message`, retries failures with
Celery countdown retries timed by the handler's :class:`~kafkabridge.retry_policy.RetryPolicy`, and
dead-letters the message when the policy says stop. Dead-lettering itself is retried while the
store is down, so a message is never dropped. What a task carries from one run to the next (the
step it is on, when it first failed, whether it is a requeue) is a :class:`~kafkabridge.wire.Delivery`.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import replace
from datetime import datetime, timezone
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn

from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from .. import runtime
from ..backoff import store_outage_delay
from ..checks import countdown_room
from ..dead_letter.record import Attempt, DeadLetterRecord
from ..errors import ConfigurationError, SchemaError
from ..message import Message
from ..observability import tracing
from ..registry import HandlerRegistry, Route, handlers
from ..retry_policy import DeadLetterNow, RetryLater, RetryPolicy
from ..schema import check_message
from ..completion import Begin
from ..ratelimit.limits import Limit
from ..wire import Delivery, Step, decode_envelope
from .throttle import Throttle, bounded
from .tracking import Tracking

logger = logging.getLogger(__name__)

HandlerFunction = Callable[[Message], Any]

DEFAULT_TIME_LIMIT = 300.0
"""Seconds one handler run may take before the worker kills it (Celery hard time limit)."""
FAILURE_PATH_ROOM = 0.1
"""Of the time limit, the share left after the soft limit for the failure path (scheduling the retry, or
storing the dead letter): the handler gets ``SoftTimeLimitExceeded`` before, which is retried like any
error; the hard limit, where Celery kills the run and the lease brings the message back, stays a backstop."""
MIN_FAILURE_PATH_SECONDS = 1.0
"""At least this long (or half a limit shorter than two seconds): a slow database write of the dead letter
must not meet the hard limit and turn a failed attempt into a killed run, which runs it again."""

DEFAULT_MAX_CRASHES = 3
"""Runs that killed their worker process (os._exit, OOM kill, segfault) before a message is dead-lettered."""

_FIXED_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


class HandlerTask(Task):
    """Celery task base of every Kafka handler. Use ``@kafka_handler``, not this class directly."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = None
    """No Celery retry limit: past it Celery fails the task and the message is gone. The RetryPolicy
    decides when to stop, and a dead letter waiting for its store is retried until it is saved."""
    ignore_result = True
    kafka_retry_policy: RetryPolicy
    kafka_function: HandlerFunction
    kafka_max_crashes: int = DEFAULT_MAX_CRASHES
    kafka_throttle: Limit | None = None

    def deliver(self, envelope: dict[str, Any], delivery: Delivery) -> None:
        """Do the step ``delivery`` is on: run the handler and decide what happens if it fails, or
        finish a dead-letter step an earlier run could not."""
        message = decode_envelope(envelope, attempt=self.request.retries + 1 - delivery.waits)
        tracking = Tracking.of(self, message.id, delivery)
        if delivery.step is Step.STORE:
            assert delivery.dead_letter is not None  # Delivery refuses a store step without its record
            self._dead_letter(delivery.dead_letter, delivery, tracking)
            return
        if delivery.step is Step.RESOLVE:
            self._resolve(message, delivery)
            return
        begin = tracking.begin()
        if begin.verdict != "run":
            self._stand_down(message, delivery, begin)
            return
        if tracking.tracked:  # the ledger counts attempts, so that a re-dispatch goes on counting
            message = replace(message, attempt=begin.attempts_used + 1)
        if message.problem is not None:  # the bridge could not read the whole record: never guess
            self._give_up(message, message.problem, delivery, tracking)
            return
        if begin.crashes >= self.kafka_max_crashes:
            self._give_up(message, f"crashed the worker {begin.crashes} times", delivery, tracking)
            return
        if self.kafka_throttle is not None:
            self._take_token(message, delivery, tracking)
        self._handle(message, delivery, tracking)

    def _take_token(self, message: Message, delivery: Delivery, tracking: Tracking) -> None:
        """Run only with a token of the handler's shared rate limit; else wait for it (not an attempt)."""
        assert self.kafka_throttle is not None
        hooks = runtime.current().hooks
        wait = Throttle.of(self, self.kafka_throttle).take(on_wait=lambda seconds: hooks.emit("on_rate_limited", message, self.name, seconds))
        if not wait:
            return
        countdown = bounded(wait, countdown_room(self.app, self.time_limit))
        tracking.waiting(message.attempt - 1, countdown)  # alive, and no attempt spent
        logger.debug("%s waits %.2fs for a token of %s's rate limit", message.id, countdown, self.name)
        hooks.emit("on_rate_limited", message, self.name, countdown)
        self._retry_later(countdown, delivery.waited())

    def _handle(self, message: Message, delivery: Delivery, tracking: Tracking) -> None:
        with tracing.handling(message, self.name, delivery):  # a span of this run, in the message's trace
            self._run(message, delivery, tracking)

    def _run(self, message: Message, delivery: Delivery, tracking: Tracking) -> None:
        hooks = runtime.current().hooks
        hooks.emit("on_handler_started", message, self.name)
        started_at, started = time.time(), time.monotonic()
        try:
            check_message(runtime.current().settings.schemas, message)  # its topic's JSON Schema, if it has one
            self.kafka_function(message)
        except Exception as error:
            failed_at = datetime.now(timezone.utc)
            attempt = Attempt.of(error, number=message.attempt, started_at=started_at, seconds=time.monotonic() - started,
                                 host=self.request.hostname or socket.gethostname())
            delivery = delivery.failed(failed_at, attempt)
            if isinstance(error, SchemaError):  # dead-lettered at once, the reason "schema: <path>: <problem>"
                self._dead_letter(self._record(message, error.reason, error, delivery, failed_at), delivery, tracking)
                return
            tracing.run_failed(error)
            self._after_failure(message, error, delivery, tracking, failed_at)
            return
        hooks.emit("on_handler_succeeded", message, self.name, time.monotonic() - started)
        tracking.finished()
        if delivery.requeued:
            self._resolve(message, delivery)

    def _stand_down(self, message: Message, delivery: Delivery, begin: Begin) -> None:
        """This copy does not run: the outcome is final, a newer dispatch owns it, or an older run may still be going."""
        if begin.verdict == "busy":
            logger.info("%s: a run of an earlier dispatch may still be going; asking again in %.1fs", message.id, begin.wait)
            self._retry_later(min(begin.wait, countdown_room(self.app, self.time_limit)), delivery.waited())
        reason = "its outcome is final already" if begin.verdict == "done" else "the bridge dispatched it again"
        logger.info("%s not run again: %s (a duplicate delivery)", message.id, reason)

    def _after_failure(self, message: Message, error: Exception, delivery: Delivery, tracking: Tracking, failed_at: datetime) -> None:
        """Retry or dead-letter a failed run; ``delivery`` has the run in its history already."""
        decision = self.kafka_retry_policy.decide(error, message.attempt)
        if isinstance(decision, RetryLater):
            with keeping_the_message(message.id):
                if not tracking.waiting(message.attempt, decision.countdown):
                    logger.info("%s failed (%r) but a newer dispatch owns it now; this copy stands down", message.id, error)
                    return
            logger.warning(
                "handler %s failed on %s (attempt %d of %d): %r; retrying in %.2fs",
                self.name, message.id, message.attempt, self.kafka_retry_policy.max_attempts, error, decision.countdown,
            )
            runtime.current().hooks.emit("on_retry_scheduled", message, self.name, error, decision.countdown)
            tracing.retry_scheduled(decision.countdown)
            self._retry_later(decision.countdown, delivery, error)
        assert isinstance(decision, DeadLetterNow)
        self._dead_letter(self._record(message, decision.reason, error, delivery, failed_at), delivery, tracking)

    def _give_up(self, message: Message, reason: str, delivery: Delivery, tracking: Tracking) -> None:
        """Dead-letter without running the handler (an unreadable record, a message that kills workers)."""
        self._dead_letter(self._record(message, reason, None, delivery, datetime.now(timezone.utc)), delivery, tracking)

    def _record(
        self, message: Message, reason: str, error: BaseException | None, delivery: Delivery, failed_at: datetime
    ) -> DeadLetterRecord:
        return DeadLetterRecord.from_error(
            message, handler=self.name, reason=reason, error=error,
            first_failed_at=delivery.first_failed_at or failed_at, last_failed_at=failed_at, history=delivery.history,
        )

    def _dead_letter(self, record: DeadLetterRecord, delivery: Delivery, tracking: Tracking) -> None:
        try:
            with tracing.dead_letter_span(record, delivery):
                runtime.dead_letter_store().save(record)
        except Exception as error:  # a missing store too: keep the message queued until it is fixed
            self._retry_store_step(
                delivery.storing(record), f"could not store the dead letter of {record.message_id}", error, tracking
            )
        tracking.finished()
        if delivery.store_attempts: runtime.current().hooks.emit("on_service_restored", "database")  # noqa: E701
        logger.warning(
            "dead-lettered %s (handler %s, %d attempt(s)): %s", record.message_id, record.handler, record.attempts, record.reason
        )
        if delivery.requeued: runtime.current().hooks.emit("on_requeue_failed", record)  # noqa: E701
        runtime.current().hooks.emit("on_dead_lettered", record)

    def _resolve(self, message: Message, delivery: Delivery) -> None:
        try:
            runtime.dead_letter_store().mark_resolved(message.id, self.name)
        except Exception as error:
            self._retry_store_step(delivery.resolving(), f"could not mark {message.id} resolved", error)
        runtime.current().hooks.emit("on_resolved", message.id, self.name)

    def _retry_store_step(self, pending: Delivery, what: str, error: Exception, tracking: Tracking | None = None) -> None:
        """The store is down: keep the message in the broker and try the same step again later."""
        runtime.current().hooks.emit("on_service_error", "database", error)
        pending = pending.store_failed()
        countdown = store_outage_delay(pending.store_attempts, maximum=countdown_room(self.app, self.time_limit))
        if tracking is not None and pending.dead_letter is not None:
            tracking.waiting(pending.dead_letter.attempts, countdown)  # still alive: no re-dispatch meanwhile
        logger.error(
            "%s (%r); the message stays queued and this is retried in %.1fs (try %d)",
            what, error, countdown, pending.store_attempts,
        )
        self._retry_later(countdown, pending)

    def _retry_later(self, countdown: float, delivery: Delivery, error: Exception | None = None) -> NoReturn:
        """A Celery countdown retry carrying ``delivery``; if it cannot be published the message stays queued."""
        with keeping_the_message(self.request.id):
            raise self.retry(countdown=countdown, exc=error, kwargs=delivery.to_kwargs())


@contextmanager
def keeping_the_message(what: object) -> Iterator[None]:
    """The way to a retry must not lose the message. Celery acknowledges a task that raised, and turns a
    retry it could not publish into a rejection without requeue; a stalled Redis (the broker, or the
    ledger) can also let the soft time limit strike inside this path. Either way the task is rejected
    with requeue instead: the broker delivers it again (the same attempt), or, with the worker gone,
    ``reject_on_worker_lost`` does."""
    try:
        yield
    except SoftTimeLimitExceeded as error:
        logger.error("%s: the soft time limit struck while its retry was being scheduled; the message is queued again", what)
        raise Reject(error, requeue=True) from error
    except Reject as rejected:
        if rejected.requeue:
            raise
        logger.error("%s: its retry could not be published (%r); the message is queued again", what, rejected.reason)
        raise Reject(rejected.reason, requeue=True) from rejected


def soft_limit(time_limit: float) -> float:
    """When the handler is interrupted: early enough that its failure path finishes before the hard limit."""
    room = min(max(time_limit * FAILURE_PATH_ROOM, MIN_FAILURE_PATH_SECONDS), time_limit / 2)
    return time_limit - room


def kafka_handler(
    topic: str,
    *,
    retry: RetryPolicy | None = None,
    name: str | None = None,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    max_crashes: int = DEFAULT_MAX_CRASHES,
    completion_timeout: float | None = None,
    throttle: Limit | None = None,
    registry: HandlerRegistry = handlers,
    **task_options: Any,
) -> Callable[[HandlerFunction], HandlerTask]:
    """Make ``function(message)`` the Celery task that handles every message of ``topic``.

    Raising retries the message per ``retry`` (default :class:`RetryPolicy`); raising
    :class:`~kafkabridge.errors.GiveUp` dead-letters it at once. A message whose runs killed the
    worker process ``max_crashes`` times is dead-lettered. ``completion_timeout`` (seconds) is how
    long the bridge waits for a published message that never started before it dispatches it again
    (default: :meth:`~kafkabridge.registry.Route.default_completion_timeout`). ``throttle`` limits how
    often the handler runs across all workers (a shared token bucket; a wait is not an attempt; the
    Celery ``rate_limit`` option is per worker process instead). Extra keyword arguments
    are Celery task options (``queue``, ``rate_limit``, ...); handlers always acknowledge late.
    """
    policy = retry or RetryPolicy()
    if max_crashes < 1:
        raise ConfigurationError(f"@kafka_handler({topic!r}) needs max_crashes >= 1, got {max_crashes}")
    for option, required in _FIXED_TASK_OPTIONS.items():
        if option in task_options and task_options[option] != required:
            raise ConfigurationError(f"@kafka_handler({topic!r}) needs {option}={required}: it is what makes delivery at-least-once")

    def decorator(function: HandlerFunction) -> HandlerTask:
        task_name = name or f"{function.__module__}.{function.__qualname__}"

        def run(task: HandlerTask, envelope: dict[str, Any], **kwargs: Any) -> None:
            task.deliver(envelope, Delivery.from_kwargs(kwargs))

        run.__name__, run.__qualname__, run.__module__ = function.__name__, function.__qualname__, function.__module__
        run.__doc__ = function.__doc__
        registry.register(Route(
            topic=topic, task_name=task_name, retry_policy=policy, time_limit=time_limit, max_crashes=max_crashes,
            completion_timeout=completion_timeout,
        ))
        runtime.install_worker_checks()
        soft_time_limit = None if time_limit is None else soft_limit(time_limit)
        return shared_task(  # type: ignore[no-any-return]
            base=HandlerTask, bind=True, name=task_name, time_limit=time_limit, soft_time_limit=soft_time_limit,
            kafka_retry_policy=policy, kafka_function=staticmethod(function), kafka_max_crashes=max_crashes,
            kafka_throttle=throttle,
            **task_options,
        )(run)

    return decorator


