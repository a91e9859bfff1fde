"""The device gateway: latest vitals, alarms, and monitoring intervals within bounds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chorus_agents.icu.devices import (
    DEFAULT_INTERVAL_SECONDS,
    MAX_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    DeviceGateway,
    DeviceRefused,
)


@pytest.mark.unit
def test_observations_keep_the_latest_and_raise_one_alarm_per_parameter() -> None:
    gateway = DeviceGateway(["pt-001", "pt-002"])
    assert gateway.observe("pt-001", "pulse", 80, "t1") is None
    alarm = gateway.observe("pt-001", "spo2", 88, "t2")
    assert alarm is not None and alarm.message == "spo2 88 below the limit of 90"
    assert gateway.observe("pt-001", "spo2", 87, "t3") is None  # still the same alarm
    assert gateway.latest("pt-001")["spo2"].value == 87
    assert [a.alarm_id for a in gateway.alarms("pt-001", active_only=True)] == [alarm.alarm_id]
    acked = gateway.acknowledge(alarm.alarm_id, "nurse-ana")
    assert acked.acknowledged_by == "nurse-ana"
    assert gateway.alarms(active_only=True) == []
    again = gateway.observe("pt-001", "pulse", 150, "t4")
    assert again is not None and "above the limit of 140" in again.message


@pytest.mark.unit
def test_refusals_name_the_rule_and_change_nothing() -> None:
    gateway = DeviceGateway(["pt-001"])
    alarm = gateway.observe("pt-001", "systolic_bp", 80, "t1")
    assert alarm is not None
    gateway.acknowledge(alarm.alarm_id, "dr-ben")
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: gateway.acknowledge(alarm.alarm_id, "dr-cy"), "already_acknowledged"),
        (lambda: gateway.acknowledge("alarm-99999", "dr-cy"), "unknown_alarm"),
        (lambda: gateway.set_interval("pt-001", MIN_INTERVAL_SECONDS - 1), "interval_bounds"),
        (lambda: gateway.set_interval("pt-001", MAX_INTERVAL_SECONDS + 1), "interval_bounds"),
        (lambda: gateway.set_interval("pt-404", 60), "unknown_patient"),
        (lambda: gateway.observe("pt-001", "glucose", 5, "t2"), "unknown_parameter"),
    ]
    for call, rule in calls:
        with pytest.raises(DeviceRefused) as refused:
            call()
        assert refused.value.rule == rule
    assert gateway.interval("pt-001") == DEFAULT_INTERVAL_SECONDS
    assert gateway.alarms()[0].acknowledged_by == "dr-ben"


@pytest.mark.unit
def test_the_same_idempotency_key_acts_once() -> None:
    gateway = DeviceGateway(["pt-001"])
    alarm = gateway.observe("pt-001", "temperature", 40.1, "t1")
    assert alarm is not None
    first = gateway.acknowledge(alarm.alarm_id, "nurse-ana", idempotency_key="t1/s1")
    assert gateway.acknowledge(alarm.alarm_id, "nurse-ana", idempotency_key="t1/s1") == first
    assert gateway.set_interval("pt-001", 30, idempotency_key="t2/s1") == 30
    gateway.set_interval("pt-001", 300)
    assert gateway.set_interval("pt-001", 30, idempotency_key="t2/s1") == 30
    assert gateway.interval("pt-001") == 300
