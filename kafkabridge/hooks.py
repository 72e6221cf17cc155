"""The one extension point for observing a message's life: metrics, alerts and tracing plug in here.

Subclass :class:`Hooks` and override what you need; every method does nothing by default. The
:class:`HookDispatcher` calls each hook and logs, never raises, what a hook throws: an alert that
cannot reach Discord must not stop a message from being handled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from .completion import Progress
    from .dead_letter import DeadLetterRecord
    from .message import Message, MessageId
    from .observability.bridges import BridgeStatus

logger = logging.getLogger(__name__)


class Hooks:
    """Called at each step of a message's life. All methods are no-ops."""

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        """The bridge handed these messages to the Celery broker, and the broker confirmed them."""

    def on_publish_failed(self, messages: Sequence[Message], error: BaseException) -> None:
        """The broker refused these messages; the bridge keeps them and tries again."""

    def on_offsets_committed(self, offsets: dict[tuple[str, int], int]) -> None:
        """Offsets (next offset to read, per topic and partition) were committed to Kafka."""

    def on_handler_started(self, message: Message, handler: str) -> None:
        """A worker is about to run ``handler`` for ``message`` (attempt ``message.attempt``)."""

    def on_handler_succeeded(self, message: Message, handler: str, seconds: float) -> None:
        """The handler returned without raising."""

    def on_retry_scheduled(self, message: Message, handler: str, error: BaseException, countdown: float) -> None:
        """The handler raised and will run again in ``countdown`` seconds."""

    def on_dead_lettered(self, record: DeadLetterRecord) -> None:
        """The message will not be retried; it is stored as a dead letter."""

    def on_requeued(self, message_id: MessageId, handler: str, task_id: str) -> None:
        """An operator sent a dead letter back to its handler."""

    def on_replayed(self, message_id: MessageId, topic: str, partition: int, offset: int) -> None:
        """An operator sent a dead letter back to its topic; Kafka has it at ``topic/partition@offset``."""

    def on_redispatched(self, messages: Sequence[Message], reasons: Sequence[str]) -> None:
        """The bridge dispatched these messages again: nobody held them any more (completion tracking)."""

    def on_partition_progress(self, progress: Mapping[tuple[str, int], Progress]) -> None:
        """Per partition: committed offset, lowest unfinished offset, messages in flight (about every second)."""

    def on_partition_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Per assigned partition: messages behind the log's end, held ones included (every few seconds)."""

    def on_rate_limited(self, message: Message, handler: str, wait: float) -> None:
        """A handler's rate limit had no token: the task waits ``wait`` seconds (not a failed attempt)."""

    def on_rate_limit_degraded(self, kind: str, live_instances: int) -> None:
        """Redis is unreachable: this process limits itself locally, to rate / ``live_instances``."""

    def on_rate_limit_restored(self, kind: str) -> None:
        """Redis answers again: this process takes from the shared buckets again."""

    def on_requeue_failed(self, record: DeadLetterRecord) -> None:
        """A requeued message failed for good again (``on_dead_lettered`` follows with the same record)."""

    def on_resolved(self, message_id: MessageId, handler: str) -> None:
        """A requeued message was handled; its dead letter is marked resolved."""

    def on_service_error(self, service: str, error: BaseException) -> None:
        """This process could not reach ``service`` ("kafka", "celery broker", "database"); it keeps retrying."""

    def on_service_restored(self, service: str) -> None:
        """``service`` answers again after ``on_service_error``."""

    def on_bridge_status(self, status: BridgeStatus) -> None:
        """A bridge's snapshot (its partitions, their lag, rate and holds), every ``STATUS_INTERVAL`` seconds while it runs."""

    def on_bridge_stopped(self, instance: str) -> None:
        """The bridge ``instance`` stopped cleanly (a crash or a kill emits nothing: its snapshots just stop)."""

    def on_produced(self, topic: str, partition: int, seconds: float) -> None:
        """A :class:`~kafkabridge.producer.Producer` record reached Kafka, ``seconds`` after ``send``."""

    def on_produce_failed(self, topic: str, error: BaseException) -> None:
        """A :class:`~kafkabridge.producer.Producer` record did not reach Kafka (its result failed with ``error``)."""


class HookDispatcher:
    """Calls every registered hook; a hook that raises is logged and skipped."""

    def __init__(self, hooks: Iterable[Hooks] = ()) -> None:
        self.hooks: tuple[Hooks, ...] = tuple(hooks)

    def emit(self, event: str, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, event)(*args)
            except Exception:
                logger.exception("kafkabridge hook %s.%s failed; carrying on", type(hook).__name__, event)
