"""``@kafka_handler``: a user's function becomes the Celery task that handles one Kafka topic.

The task runs the function on a :class:`~kafkabridge.message.Message`, retries failures with
Celery countdown retries timed by the handler's :class:`~kafkabridge.retry_policy.RetryPolicy`, and
dead-letters the message when the policy says stop. Dead-lettering itself is retried while the
store is down, so a message is never dropped. What a task carries from one run to the next (the
step it is on, when it first failed, whether it is a requeue) is a :class:`~kafkabridge.wire.Delivery`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from celery import Task, shared_task

from .. import runtime
from ..backoff import store_outage_delay
from ..dead_letter.record import DeadLetterRecord
from ..errors import ConfigurationError
from ..message import Message
from ..registry import HandlerRegistry, Route, handlers
from ..retry_policy import DeadLetterNow, RetryLater, RetryPolicy
from ..wire import Delivery, Step, decode_envelope

logger = logging.getLogger(__name__)

HandlerFunction = Callable[[Message], Any]

DEFAULT_TIME_LIMIT = 300.0
"""Seconds one handler run may take before the worker kills it (Celery hard time limit)."""
SOFT_TIME_LIMIT_FRACTION = 0.9
"""The handler gets ``SoftTimeLimitExceeded`` at this fraction of its time limit. It is retried like any
error; the hard limit, where Celery acknowledges and drops the task, stays a backstop."""

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

    def deliver(self, envelope: dict[str, Any], delivery: Delivery) -> None:
        """Do the step ``delivery`` is on: run the handler and decide what happens if it fails, or
        finish a dead-letter step an earlier run could not."""
        if delivery.step is Step.STORE:
            assert delivery.dead_letter is not None  # Delivery refuses a store step without its record
            self._dead_letter(delivery.dead_letter, delivery)
            return
        if delivery.step is Step.RESOLVE:
            self._resolve(decode_envelope(envelope), delivery)
            return
        message = decode_envelope(envelope, attempt=self.request.retries + 1)
        if message.problem is not None:  # the bridge could not read the whole record: never guess
            record = self._record(message, message.problem, None, delivery, datetime.now(timezone.utc))
            self._dead_letter(record, delivery)
            return
        hooks = runtime.current().hooks
        hooks.emit("on_handler_started", message, self.name)
        started = time.monotonic()
        try:
            self.kafka_function(message)
        except Exception as error:
            self._after_failure(message, error, delivery)
            return
        hooks.emit("on_handler_succeeded", message, self.name, time.monotonic() - started)
        if delivery.requeued:
            self._resolve(message, delivery)

    def _after_failure(self, message: Message, error: Exception, delivery: Delivery) -> None:
        failed_at = datetime.now(timezone.utc)
        delivery = delivery.failed(failed_at)
        decision = self.kafka_retry_policy.decide(error, message.attempt)
        if isinstance(decision, RetryLater):
            logger.warning(
                "handler %s failed on %s (attempt %d of %d): %r; retrying in %.2fs",
                self.name, message.id, message.attempt, self.kafka_retry_policy.max_attempts, error, decision.countdown,
            )
            runtime.current().hooks.emit("on_retry_scheduled", message, self.name, error, decision.countdown)
            raise self.retry(countdown=decision.countdown, exc=error, kwargs=delivery.to_kwargs())
        assert isinstance(decision, DeadLetterNow)
        self._dead_letter(self._record(message, decision.reason, error, delivery, failed_at), delivery)

    def _record(
        self, message: Message, reason: str, error: BaseException | None, delivery: Delivery, failed_at: datetime
    ) -> DeadLetterRecord:
        return DeadLetterRecord.from_error(
            message, handler=self.name, reason=reason, error=error,
            first_failed_at=delivery.first_failed_at or failed_at, last_failed_at=failed_at,
        )

    def _dead_letter(self, record: DeadLetterRecord, delivery: Delivery) -> None:
        try:
            runtime.dead_letter_store().save(record)
        except Exception as error:  # a missing store too: keep the message queued until it is fixed
            self._retry_store_step(delivery.storing(record), f"could not store the dead letter of {record.message_id}", error)
        logger.warning(
            "dead-lettered %s (handler %s, %d attempt(s)): %s", record.message_id, record.handler, record.attempts, record.reason
        )
        runtime.current().hooks.emit("on_dead_lettered", record)

    def _resolve(self, message: Message, delivery: Delivery) -> None:
        try:
            runtime.dead_letter_store().mark_resolved(message.id, self.name)
        except Exception as error:
            self._retry_store_step(delivery.resolving(), f"could not mark {message.id} resolved", error)

    def _retry_store_step(self, pending: Delivery, what: str, error: Exception) -> None:
        """The store is down: keep the message in the broker and try the same step again later."""
        pending = pending.store_failed()
        countdown = store_outage_delay(pending.store_attempts)
        logger.error(
            "%s (%r); the message stays queued and this is retried in %.1fs (try %d)",
            what, error, countdown, pending.store_attempts,
        )
        raise self.retry(countdown=countdown, kwargs=pending.to_kwargs())


def kafka_handler(
    topic: str,
    *,
    retry: RetryPolicy | None = None,
    name: str | None = None,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    registry: HandlerRegistry = handlers,
    **task_options: Any,
) -> Callable[[HandlerFunction], HandlerTask]:
    """Make ``function(message)`` the Celery task that handles every message of ``topic``.

    Raising retries the message per ``retry`` (default :class:`RetryPolicy`); raising
    :class:`~kafkabridge.errors.GiveUp` dead-letters it at once. Extra keyword arguments are Celery
    task options (``queue``, ``rate_limit``, ...); handlers always acknowledge late.
    """
    policy = retry or RetryPolicy()
    for option, required in _FIXED_TASK_OPTIONS.items():
        if option in task_options and task_options[option] != required:
            raise ConfigurationError(f"@kafka_handler({topic!r}) needs {option}={required}: it is what makes delivery at-least-once")

    def decorator(function: HandlerFunction) -> HandlerTask:
        task_name = name or f"{function.__module__}.{function.__qualname__}"

        def run(task: HandlerTask, envelope: dict[str, Any], **kwargs: Any) -> None:
            task.deliver(envelope, Delivery.from_kwargs(kwargs))

        run.__name__, run.__qualname__, run.__module__ = function.__name__, function.__qualname__, function.__module__
        run.__doc__ = function.__doc__
        registry.register(Route(topic=topic, task_name=task_name, retry_policy=policy, time_limit=time_limit))
        runtime.install_worker_checks()
        soft_time_limit = None if time_limit is None else time_limit * SOFT_TIME_LIMIT_FRACTION
        return shared_task(  # type: ignore[no-any-return]
            base=HandlerTask, bind=True, name=task_name, time_limit=time_limit, soft_time_limit=soft_time_limit,
            kafka_retry_policy=policy, kafka_function=staticmethod(function),
            **task_options,
        )(run)

    return decorator


