"""The operator's settings: environment variables and flags."""

from __future__ import annotations

import pytest
from chorus_operator.settings import SettingsError, load_settings, parse_args


@pytest.mark.unit
def test_defaults_watch_everything_and_derive_the_bootstrap_address() -> None:
    settings = load_settings({})
    assert settings.clusterwide
    assert settings.bootstrap_servers == "chorus-kafka-bootstrap.kafka.svc:9092"
    model = settings.to_model()
    assert model.kafka_authentication is None
    assert model.topic_deletion_policy == "retain"


@pytest.mark.unit
def test_environment_then_flags() -> None:
    env = {
        "CHORUS_NAMESPACES": "trading, iot",
        "CHORUS_KAFKA_TLS": "true",
        "CHORUS_KAFKA_AUTHENTICATION": "scram-sha-512",
        "CHORUS_METRICS_PORT": "0",
        "KUBECONFIG": "/k",
    }
    settings = parse_args(["--kafka-namespace", "streams", "--recheck-interval", "5"], env)
    assert settings.namespaces == ("trading", "iot")
    assert settings.bootstrap_servers == "chorus-kafka-bootstrap.streams.svc:9093"
    assert settings.metrics_port == 0
    assert settings.recheck_interval == 5.0
    assert settings.kubeconfig == "/k"
    assert settings.to_model().kafka_authentication == "scram-sha-512"
    assert settings.to_model().kafka_port == 9093


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHORUS_KAFKA_TLS": "maybe"}, "CHORUS_KAFKA_TLS"),
        ({"CHORUS_HEALTH_PORT": "70000"}, "CHORUS_HEALTH_PORT"),
        ({"CHORUS_TOPIC_DELETION_POLICY": "shred"}, "CHORUS_TOPIC_DELETION_POLICY"),
        ({"CHORUS_RECHECK_INTERVAL": "-1"}, "CHORUS_RECHECK_INTERVAL"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)
