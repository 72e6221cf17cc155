import pytest
from celery import Celery

from kafkabridge import Message
from kafkabridge.consumer.bridge import to_message
from kafkabridge.errors import ConfigurationError
from kafkabridge.message import from_millis
from kafkabridge.consumer.publisher import CeleryPublisher, Dispatch
from kafkabridge.checks import throttled_queue_neighbours
from kafkabridge.routing import route_options
from kafkabridge.registry import Route
from kafkabridge.retry_policy import RetryPolicy
from kafkabridge.wire import FIRST_DELIVERY, Delivery


def app_with_tasks() -> Celery:
    app = Celery(set_as_current=False)

    @app.task(name="h.special", queue="special")
    def special() -> None: ...

    @app.task(name="h.plain")
    def plain() -> None: ...

    app.conf.task_routes = {"h.routed": {"queue": "from-routes"}}
    return app


def test_a_handlers_own_queue_wins_over_the_bridge_default() -> None:
    assert route_options(app_with_tasks(), "h.special", "bridge-default")["queue"].name == "special"


def test_the_bridge_default_queue_applies_to_handlers_without_one() -> None:
    assert route_options(app_with_tasks(), "h.plain", "bridge-default")["queue"].name == "bridge-default"


def test_task_routes_apply_to_tasks_known_only_by_name() -> None:
    assert route_options(app_with_tasks(), "h.routed", None)["queue"].name == "from-routes"


def test_non_json_serializers_are_refused() -> None:
    app = app_with_tasks()
    app.conf.task_serializer = "pickle"
    route = Route(topic="t", task_name="h.plain", retry_policy=RetryPolicy(), time_limit=1.0)
    with pytest.raises(ConfigurationError, match="JSON"):
        CeleryPublisher(app, {"t": route})._template("h.plain")


def test_a_dispatch_is_a_first_delivery_named_by_its_record_unless_it_is_a_requeue() -> None:
    message = Message(topic="t", partition=1, offset=7)
    assert Dispatch(message, "h.plain").delivery == FIRST_DELIVERY
    assert Dispatch(message, "h.plain").task_id == "t/1@7"
    assert Dispatch(message, "h.plain", Delivery(requeue_id="0123456789ab")).task_id == "t/1@7:requeue:0123456789ab"


def test_a_timestamp_that_does_not_fit_a_datetime_becomes_none() -> None:
    assert from_millis(253_402_300_800_000 * 10) is None
    assert from_millis(0) is not None


class FakeRecord:
    """The shape of a confluent-kafka message, for the conversion only."""

    def topic(self) -> str: return "t"
    def partition(self) -> int: return 0
    def offset(self) -> int: return 5
    def key(self) -> bytes: return b"k"
    def value(self) -> bytes: return b"v"
    def timestamp(self) -> tuple[int, int]: return (1, 2**62)
    def headers(self) -> list: raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


def test_records_with_unreadable_headers_or_timestamps_keep_their_bytes_and_say_why() -> None:
    message = to_message(FakeRecord())
    assert message == Message(topic="t", partition=0, offset=5, key=b"k", value=b"v")
    assert message.timestamp is None and "headers could not be read" in message.problem


# -- the start-up warning of throttled handlers sharing a queue -----------------------------------------


def routes_of(app: Celery, *names: str) -> list[Route]:
    return [Route(topic=f"t.{name}", task_name=name, retry_policy=RetryPolicy(), time_limit=60) for name in names]


def app_with_a_throttled_handler() -> Celery:
    app = app_with_tasks()

    @app.task(name="h.throttled", shared=False)
    def throttled() -> None: ...

    throttled.kafka_throttle = object()  # what @kafka_handler(throttle=...) sets

    @app.task(name="h.alone", queue="slow", shared=False)
    def alone() -> None: ...

    alone.kafka_throttle = object()
    return app


def test_a_throttled_handler_sharing_the_default_queue_is_named_with_its_neighbours() -> None:
    app = app_with_a_throttled_handler()
    [warning] = throttled_queue_neighbours(app, routes_of(app, "h.throttled", "h.plain", "h.special"), "bridge-default")
    assert warning.startswith("queue 'bridge-default': throttled handler(s) h.throttled share it with h.plain;"), warning
    assert "queue of its own" in warning


def test_a_throttled_handler_with_a_queue_of_its_own_is_not_warned_of() -> None:
    app = app_with_a_throttled_handler()
    assert throttled_queue_neighbours(app, routes_of(app, "h.alone", "h.plain", "h.special"), "bridge-default") == []
