"""ALERTS is read in one place; mistakes are start-up errors; the webhook URL may come from the environment and never shows."""

from __future__ import annotations

import pytest

from kafkabridge import BridgeSettings
from kafkabridge.alerts import AlertSettings
from kafkabridge.errors import ConfigurationError


def test_the_environment_gives_the_webhook_url_and_no_repr_shows_it() -> None:
    settings = AlertSettings.from_mapping({"WINDOW": 10, "KINDS": {"lag": {"threshold": 5}}},
                                          environ={"KAFKABRIDGE_ALERTS_WEBHOOK_URL": "https://discord.example/api/webhooks/1/secret"})
    assert settings.enabled and settings.window == 10 and settings.threshold("lag") == 5 and settings.kind_enabled("dead_letter")
    assert "secret" not in repr(settings)
    bridge = BridgeSettings.from_mapping({"ALERTS": {"WEBHOOK_URL": "https://discord.example/api/webhooks/1/secret"}}, environ={})
    assert "secret" not in repr(bridge)


@pytest.mark.parametrize("alerts, says", [
    ({"WINDOWS": 3}, "Did you mean 'WINDOW'?"),
    ({"KINDS": {"dead_letters": {}}}, "unknown kind 'dead_letters'"),
    ({"UPDATE_INTERVAL": 0}, "UPDATE_INTERVAL"),
])
def test_a_malformed_alerts_option_is_refused_when_the_settings_are_built(alerts: dict, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says.replace("(", r"\(").replace("?", r"\?")):
        BridgeSettings.from_mapping({"ALERTS": alerts}, environ={})
