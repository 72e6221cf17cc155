"""The options that make delivery at-least-once cannot be switched off by configuration."""

from __future__ import annotations

import pytest

from dashboard.celery import app
from kafkabridge import BridgeSettings, ConfigurationError, Message, build_bridge, kafka_handler
from kafkabridge.registry import HandlerRegistry
from tests.app.recorder import topic


def bridge_config(consumer_config: dict[str, object]) -> dict[str, object]:
    return build_bridge(app, BridgeSettings(consumer_config=consumer_config), topics=[topic("record")]).consumer_config()


@pytest.mark.parametrize("option", ["enable.auto.commit", "enable.auto.offset.store"])
@pytest.mark.parametrize("value", [True, "true", "True"])
def test_consumer_config_that_turns_automatic_commits_on_is_refused_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=option.replace(".", r"\.")):
        bridge_config({option: value})


def test_consumer_config_that_repeats_the_safe_values_is_accepted_and_they_stay_off() -> None:
    config = bridge_config({"enable.auto.commit": "false", "enable.auto.offset.store": False, "fetch.min.bytes": 1})
    assert config["enable.auto.commit"] is False and config["enable.auto.offset.store"] is False
    assert config["fetch.min.bytes"] == 1


@pytest.mark.parametrize("option", ["acks_late", "reject_on_worker_lost"])
def test_a_handler_that_would_acknowledge_early_is_refused(option: str) -> None:
    registry = HandlerRegistry()
    with pytest.raises(ConfigurationError, match=option):

        @kafka_handler("guards.early-ack", registry=registry, name=f"tests.guards.{option}", **{option: False})
        def handle(message: Message) -> None:
            pass


def test_a_handler_that_repeats_the_safe_options_is_accepted() -> None:
    @kafka_handler("guards.late-ack", registry=HandlerRegistry(), name="tests.guards.late", acks_late=True, reject_on_worker_lost=True)
    def handle(message: Message) -> None:
        pass

    assert handle.acks_late is True and handle.reject_on_worker_lost is True
