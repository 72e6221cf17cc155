"""One row per dead-lettered Kafka record: the raw bytes, where they came from, and why they failed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from kafkabridge import Message
from kafkabridge.wire import decode_headers


class FailedMessage(models.Model):
    class Status(models.TextChoices):
        FAILED = "failed", "Failed"
        REQUEUED = "requeued", "Requeued"
        RESOLVED = "resolved", "Resolved"
        REPLAYED = "replayed", "Replayed to its topic"
        DISCARDED = "discarded", "Discarded"
        EDITED = "edited", "Edited and replayed"

    source_topic = models.CharField(max_length=249, db_index=True)
    source_partition = models.IntegerField()
    source_offset = models.BigIntegerField()
    key = models.BinaryField(null=True, blank=True)
    key_text = models.CharField(max_length=255, blank=True, help_text="The key as text, for search.")
    value = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=list, blank=True, help_text="[[name, base64 value or null], ...] in order.")
    message_timestamp = models.DateTimeField(null=True, blank=True)

    handler = models.CharField(max_length=255, db_index=True)
    reason = models.TextField()
    exception_class = models.CharField(max_length=255, blank=True, db_index=True)
    exception_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField()
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()  # indexed first in kbf_last_failed_topic
    fingerprint = models.CharField(
        max_length=40, blank=True, db_index=True,
        help_text="The failure group: handler + exception class + normalised message (kafkabridge.dead_letter.fingerprint).",
    )
    history = models.JSONField(
        default=list, blank=True,
        help_text="Every attempt, oldest first: [{number, started_at, seconds, host, exception_class, exception_message}].",
    )
    corrected_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrected_copies",
        help_text="The failure this row is the edited copy of (edit and replay).",
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FAILED, db_index=True)
    requeue_count = models.PositiveIntegerField(default=0)
    requeued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requeued_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_failed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"], condition=Q(corrected_from__isnull=True),
                name="one_failed_message_per_record",
            )
        ]
        indexes = [
            # the change list's usual filters (a status, a topic and a status) in its order
            models.Index(fields=["status", "-last_failed_at"], name="kbf_status_last_failed"),
            models.Index(fields=["source_topic", "status", "-last_failed_at"], name="kbf_topic_status_last_failed"),
            # the groups' GROUP BY fingerprint with first/last seen and a sample id, from the index alone
            # (key columns, not INCLUDE: SQLite warns about INCLUDE)
            models.Index(fields=["status", "fingerprint", "last_failed_at", "first_failed_at", "id"], name="kbf_status_fingerprint"),
            # the overview's failures per hour per topic
            models.Index(fields=["last_failed_at", "source_topic"], name="kbf_last_failed_topic"),
        ]
        permissions = [
            ("requeue_failedmessage", "Can requeue and resolve failed messages"),
            ("replay_failedmessage", "Can replay failed messages to their source topic"),
            ("discard_failedmessage", "Can discard failed messages"),
            ("edit_and_replay_failedmessage", "Can edit a failed message's payload and requeue the corrected copy"),
        ]

    def __str__(self) -> str:
        return f"{self.source_topic}/{self.source_partition}@{self.source_offset}"

    def to_message(self) -> Message:
        """The original Kafka record, byte for byte."""
        return Message(
            topic=self.source_topic,
            partition=self.source_partition,
            offset=self.source_offset,
            key=None if self.key is None else bytes(self.key),
            value=None if self.value is None else bytes(self.value),
            headers=decode_headers(self.headers),
            timestamp=self.message_timestamp,
        )


class BulkJob(models.Model):
    """One bulk action on every failure matching a change-list filter: its progress while it runs, its audit after.

    At most one job per (action, filter) is pending or running at a time, so a second click finds the first.
    """

    class Action(models.TextChoices):
        REQUEUE = "requeue", "Requeue"
        RESOLVE = "resolve", "Resolve"
        DISCARD = "discard", "Discard"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (State.PENDING, State.RUNNING)

    action = models.CharField(max_length=16, choices=Action.choices)
    query = models.TextField(blank=True, help_text="The change list's filter querystring.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(help_text="Failures in status failed matching the filter when the job was made.")
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Rows the action could not be applied to (e.g. the broker refused).")
    skipped = models.PositiveIntegerField(default=0, help_text="Rows no longer in status failed when their turn came.")
    max_pk = models.BigIntegerField(help_text="Rows added after the job was made are not part of it.")
    cursor = models.BigIntegerField(default=0, help_text="The last row handled (rows are taken in primary key order).")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="Last progress of its runner; a stale one is taken over.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "query"], condition=Q(state__in=["pending", "running"]), name="one_active_bulk_job_per_filter"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} #{self.pk} ({self.done + self.failed + self.skipped}/{self.total})"

    @property
    def finished(self) -> bool:
        return self.state not in self.ACTIVE


class RateLimitSetting(models.Model):
    """A rate limit an operator changed at run time; saving it applies it to running bridges and workers."""

    class Kind(models.TextChoices):
        TOPIC = "topic", "Topic (per partition, at the bridge)"
        HANDLER = "handler", "Handler (across all workers)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=255, help_text="The topic, or the handler's Celery task name.")
    rate = models.FloatField(help_text="Tokens per second.")
    burst = models.FloatField(null=True, blank=True, help_text="At most this many at once (default: one second's worth).")
    max_rate = models.FloatField(null=True, blank=True, help_text="Topics: the rate rises toward this as the lag grows.")
    lag_threshold = models.FloatField(null=True, blank=True, help_text="Topics: lag (messages) below which the base rate holds.")
    lag_scale = models.FloatField(null=True, blank=True, help_text="Topics: lag past the threshold at which the rate is half way to max_rate.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "target"], name="one_rate_limit_per_target")]
        ordering = ["kind", "target"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The limit's name in kafkabridge (``topic:orders``, ``handler:myapp.tasks.handle``)."""
        return f"{self.kind}:{self.target}"

    def fields(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in ("rate", "burst", "max_rate", "lag_threshold", "lag_scale")}

    def clean(self) -> None:
        """Refuse in the form what kafkabridge would refuse at run time (e.g. max_rate below rate)."""
        from django.core.exceptions import ValidationError

        from kafkabridge.errors import ConfigurationError
        from kafkabridge.ratelimit import Limit

        try:
            Limit(**{name: value for name, value in self.fields().items() if value is not None})
        except (ConfigurationError, TypeError) as error:
            raise ValidationError(str(error)) from error
