"""One row per dead-lettered Kafka record: the raw bytes, where they came from, and why they failed."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from kafkabridge import Message
from kafkabridge.wire import decode_headers


class FailedMessage(models.Model):
    class Status(models.TextChoices):
        FAILED = "failed", "Failed"
        REQUEUED = "requeued", "Requeued"
        RESOLVED = "resolved", "Resolved"
        REPLAYED = "replayed", "Replayed to its topic"
        DISCARDED = "discarded", "Discarded"

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
    last_failed_at = models.DateTimeField(db_index=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FAILED, db_index=True)
    requeue_count = models.PositiveIntegerField(default=0)
    requeued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requeued_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_failed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"], name="one_failed_message_per_record"
            )
        ]
        permissions = [
            ("requeue_failedmessage", "Can requeue failed messages"),
            ("replay_failedmessage", "Can replay failed messages to their source topic"),
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
