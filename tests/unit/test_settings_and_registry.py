import pytest
from celery import Celery

from kafkabridge import BridgeSettings, RetryPolicy
from kafkabridge.checks import check_visibility_timeout
from kafkabridge.errors import ConfigurationError
from kafkabridge.registry import HandlerRegistry, Route


def route(topic: str = "orders", task: str = "app.tasks.handle", max_delay: float = 300.0, time_limit: float | None = 300.0) -> Route:
    return Route(topic=topic, task_name=task, retry_policy=RetryPolicy(max_delay=max_delay), time_limit=time_limit)


def test_settings_read_upper_case_options_and_the_environment_wins() -> None:
    settings = BridgeSettings.from_mapping({"GROUP_ID": "g", "BOOTSTRAP_SERVERS": "a:1"}, environ={"KAFKA_BOOTSTRAP_SERVERS": "b:2"})
    assert settings.group_id == "g"
    assert settings.bootstrap_servers == "b:2"


def test_unknown_settings_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="Did you mean 'GROUP_ID'"):
        BridgeSettings.from_mapping({"GROUP_IDS": "g"}, environ={})


def test_two_handlers_for_one_topic_is_an_error_naming_the_topic() -> None:
    registry = HandlerRegistry()
    registry.register(route(task="a.first"))
    with pytest.raises(ConfigurationError, match="topic 'orders' has two handlers"):
        registry.register(route(task="a.second"))


def test_registering_the_same_handler_again_is_harmless() -> None:
    registry = HandlerRegistry()
    registry.register(route())
    registry.register(route())
    assert registry.topics() == ("orders",)


def test_a_topic_without_a_handler_is_an_error_naming_the_topic() -> None:
    registry = HandlerRegistry()
    registry.register(route())
    with pytest.raises(ConfigurationError, match="no handler for topic\\(s\\) 'payments'"):
        registry.routes_for(["payments"])


def test_retries_that_outlive_the_visibility_timeout_are_refused() -> None:
    app = Celery(broker="redis://127.0.0.1:6379/0", set_as_current=False)
    app.conf.broker_transport_options = {"visibility_timeout": 600}
    check_visibility_timeout(app, [route(max_delay=200.0, time_limit=300.0)])
    with pytest.raises(ConfigurationError, match="reaches the broker's visibility_timeout of 600s"):
        check_visibility_timeout(app, [route(max_delay=400.0, time_limit=300.0)])


def test_a_handler_without_any_time_limit_is_refused_on_redis() -> None:
    app = Celery(broker="redis://127.0.0.1:6379/0", set_as_current=False)
    with pytest.raises(ConfigurationError, match="has no time limit"):
        check_visibility_timeout(app, [route(time_limit=None)])


def test_brokers_without_a_visibility_timeout_are_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery lets it win over the app's broker
    app = Celery(broker="amqp://guest@localhost//", set_as_current=False)
    check_visibility_timeout(app, [route(max_delay=10_000.0)])


def redis_app(visibility_timeout: float) -> Celery:
    app = Celery(broker="redis://127.0.0.1:6379/0", set_as_current=False)
    app.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}
    return app


def test_the_visibility_check_counts_the_policy_and_the_time_limit_not_the_store_backoff() -> None:
    # 2 s of retry delay + 60 s of run fit in 90 s; the dead-letter store's 60 s backoff is not added
    check_visibility_timeout(redis_app(90), [route(max_delay=2.0, time_limit=60.0)])


def test_the_visibility_check_names_the_retry_delay_when_that_is_what_is_too_long() -> None:
    with pytest.raises(ConfigurationError, match=r"Lower RetryPolicy.max_delay \(500s\)") as refused:
        check_visibility_timeout(redis_app(600), [route(max_delay=500.0, time_limit=200.0)])
    assert "time_limit" not in str(refused.value)


def test_the_visibility_check_names_the_time_limit_when_that_is_what_is_too_long() -> None:
    with pytest.raises(ConfigurationError, match=r"Lower the handler's time_limit \(599s") as refused:
        check_visibility_timeout(redis_app(600), [route(max_delay=2.0, time_limit=599.0)])
    assert "max_delay" not in str(refused.value)


def test_the_store_backoff_stays_within_the_room_the_visibility_timeout_leaves() -> None:
    from kafkabridge.backoff import STORE_OUTAGE_MAX_DELAY, store_outage_delay
    from kafkabridge.checks import countdown_room

    room = countdown_room(redis_app(90), 60.0)
    assert room == 30.0
    assert max(store_outage_delay(n, maximum=room) for n in range(1, 40)) <= 30.0
    assert max(store_outage_delay(n) for n in range(1, 40)) <= STORE_OUTAGE_MAX_DELAY


def test_commit_after_accepts_completion_or_publish_only() -> None:
    assert BridgeSettings().tracks_completion
    assert not BridgeSettings(commit_after="publish").tracks_completion
    with pytest.raises(ConfigurationError, match="COMMIT_AFTER must be 'completion' or 'publish'"):
        BridgeSettings(commit_after="handled")


def test_the_default_completion_timeout_outlasts_the_longest_retry_schedule() -> None:
    handler = Route(topic="t", task_name="x", retry_policy=RetryPolicy(max_attempts=4, max_delay=10.0), time_limit=30.0)
    schedule = 4 * 30.0 + 3 * 10.0
    assert handler.default_completion_timeout(30.0) > schedule
