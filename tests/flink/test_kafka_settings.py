"""``chorus_flink.kafka.KafkaSettings``: the Kafka client properties a job's tables get,
the SASL login among them (its secret from the pod's environment, its module relocated)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
kafka: Any = importlib.import_module("chorus_flink.kafka")
config: Any = importlib.import_module("chorus_flink.config")
trading: Any = importlib.import_module("chorus_flink.jobs.trading")

STRIMZI_LOGIN = (
    "org.apache.kafka.common.security.scram.ScramLoginModule required "
    'username="desk" password="s3cret";'
)
SCRAM = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512"}


def settings(properties: dict[str, str], environ: dict[str, str]) -> Any:
    given = {"bootstrap_servers": "k:9092", "kafka_properties": properties}
    return kafka.KafkaSettings.from_config(given, environ)


def test_the_login_comes_from_the_environment_with_the_connector_jars_module() -> None:
    found = settings(SCRAM, {kafka.JAAS_ENV: STRIMZI_LOGIN})
    assert found.properties == {
        **SCRAM,
        "sasl.jaas.config": "org.apache.flink.kafka.shaded." + STRIMZI_LOGIN,
    }
    table = kafka.client_options(found)
    assert table["properties.sasl.jaas.config"].startswith(
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule "
    )


def test_a_login_in_the_config_wins_and_a_relocated_one_is_kept() -> None:
    relocated = "org.apache.flink.kafka.shaded." + STRIMZI_LOGIN
    given = {**SCRAM, "sasl.jaas.config": relocated}
    assert settings(given, {kafka.JAAS_ENV: "other"}).properties["sasl.jaas.config"] == relocated


def test_no_sasl_no_login_even_if_the_environment_has_one() -> None:
    found = settings({"security.protocol": "SSL"}, {kafka.JAAS_ENV: STRIMZI_LOGIN})
    assert found.properties == {"security.protocol": "SSL"}


def test_a_mechanism_without_a_login_is_a_config_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(kafka.JAAS_ENV, raising=False)
    given = {"bootstrap_servers": "k:9092", "kafka_properties": SCRAM}
    with pytest.raises(
        config.ConfigError,
        match=r"job chorus_flink.jobs.trading: config 'kafka_properties' sets sasl.mechanism "
        r"SCRAM-SHA-512 but no sasl.jaas.config, and KAFKA_SASL_JAAS_CONFIG is not set",
    ):
        config.JobConfig.parse("chorus_flink.jobs.trading", given, trading.PARAMETERS)
