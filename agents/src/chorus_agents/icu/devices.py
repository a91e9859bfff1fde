"""A simulated bedside device gateway: latest vitals, alarms, monitoring intervals.

One of the ICU domain's back ends (see :mod:`.ehr`). The gateway takes observations as
the monitors send them (:meth:`DeviceGateway.observe`, fed from the ``icu.vitals``
stream by :mod:`.vitals_feed`), keeps the latest of each parameter per patient, and
raises an alarm when one crosses its limit in :data:`ALARM_LIMITS` (one active alarm per
patient and parameter). Its rules:

- an alarm is acknowledged once, by someone;
- a monitoring interval stays within :data:`MIN_INTERVAL_SECONDS` and
  :data:`MAX_INTERVAL_SECONDS`;
- the same idempotency key returns the first answer and changes nothing.

Every refusal is a :class:`DeviceRefused` naming its rule. Thread-safe: every method
holds the gateway's lock, so the MCP server's tool handlers and the vitals feed's
consumer thread (:mod:`.vitals_feed`) can share one gateway.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Concatenate, ParamSpec, TypeVar

from chorus_agents.icu.news2 import PARAMETERS

MIN_INTERVAL_SECONDS = 15
MAX_INTERVAL_SECONDS = 3600
DEFAULT_INTERVAL_SECONDS = 60

ALARM_LIMITS: Mapping[str, tuple[float, float]] = {
    "respiration_rate": (8.0, 30.0),
    "spo2": (90.0, 100.0),
    "systolic_bp": (85.0, 200.0),
    "pulse": (40.0, 140.0),
    "temperature": (35.0, 39.5),
}
"""Below the first or above the second value, the monitor alarms."""


class DeviceRefused(ValueError):
    """The gateway refused an operation; ``rule`` names the rule (``interval_bounds``...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Observation:
    parameter: str
    value: float
    time: str


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    patient_id: str
    parameter: str
    value: float
    message: str
    raised: str
    acknowledged_by: str | None = None
    idempotency_key: str | None = None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[DeviceGateway, _P], _R],
) -> Callable[Concatenate[DeviceGateway, _P], _R]:
    """Runs ``method`` holding the gateway's lock."""

    @functools.wraps(method)
    def locked(self: DeviceGateway, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class DeviceGateway:
    """The monitors of a set of patients."""

    def __init__(self, patients: Iterable[str]) -> None:
        self._latest: dict[str, dict[str, Observation]] = {p: {} for p in patients}
        self._intervals = dict.fromkeys(self._latest, DEFAULT_INTERVAL_SECONDS)
        self._alarms: dict[str, Alarm] = {}
        self._alarm_keys: dict[str, Alarm] = {}
        self._interval_keys: dict[str, int] = {}
        self._ids = (f"alarm-{n:05d}" for n in itertools.count(1))
        self._lock = threading.RLock()

    def _patient(self, patient_id: str) -> dict[str, Observation]:
        latest = self._latest.get(patient_id)
        if latest is None:
            raise DeviceRefused("unknown_patient", f"no monitor for patient {patient_id!r}")
        return latest

    @_locked
    def observe(self, patient_id: str, parameter: str, value: float, time: str) -> Alarm | None:
        """Take one observation; answer the alarm it raised, if any."""
        latest = self._patient(patient_id)
        if parameter not in PARAMETERS:
            raise DeviceRefused("unknown_parameter", f"{parameter!r} is not a monitored parameter")
        latest[parameter] = Observation(parameter, value, time)
        limits = ALARM_LIMITS.get(parameter)
        if limits is None or limits[0] <= value <= limits[1]:
            return None
        for alarm in self._alarms.values():
            if (
                alarm.patient_id == patient_id
                and alarm.parameter == parameter
                and alarm.acknowledged_by is None
            ):
                return None
        side = "below" if value < limits[0] else "above"
        bound = limits[0] if value < limits[0] else limits[1]
        alarm = Alarm(
            alarm_id=next(self._ids),
            patient_id=patient_id,
            parameter=parameter,
            value=value,
            message=f"{parameter} {value:g} {side} the limit of {bound:g}",
            raised=time,
        )
        self._alarms[alarm.alarm_id] = alarm
        return alarm

    @_locked
    def latest(self, patient_id: str) -> dict[str, Observation]:
        """The latest observation of each parameter, by parameter."""
        return dict(sorted(self._patient(patient_id).items()))

    @_locked
    def alarms(self, patient_id: str | None = None, *, active_only: bool = False) -> list[Alarm]:
        if patient_id is not None:
            self._patient(patient_id)
        return [
            a
            for _, a in sorted(self._alarms.items())
            if (patient_id is None or a.patient_id == patient_id)
            and not (active_only and a.acknowledged_by is not None)
        ]

    @_locked
    def acknowledge(self, alarm_id: str, by: str, *, idempotency_key: str | None = None) -> Alarm:
        """Acknowledge an active alarm in ``by``'s name."""
        if idempotency_key is not None and idempotency_key in self._alarm_keys:
            return self._alarm_keys[idempotency_key]
        alarm = self._alarms.get(alarm_id)
        if alarm is None:
            raise DeviceRefused("unknown_alarm", f"alarm {alarm_id!r} does not exist")
        if alarm.acknowledged_by is not None:
            raise DeviceRefused(
                "already_acknowledged",
                f"alarm {alarm_id} was acknowledged by {alarm.acknowledged_by}",
            )
        if not by.strip():
            raise DeviceRefused("acknowledged_by", "an acknowledgement needs a name")
        done = replace(alarm, acknowledged_by=by, idempotency_key=idempotency_key)
        self._alarms[alarm_id] = done
        if idempotency_key is not None:
            self._alarm_keys[idempotency_key] = done
        return done

    @_locked
    def interval(self, patient_id: str) -> int:
        self._patient(patient_id)
        return self._intervals[patient_id]

    @_locked
    def set_interval(
        self, patient_id: str, seconds: int, *, idempotency_key: str | None = None
    ) -> int:
        """Set how often the monitor sends a full set of observations."""
        if idempotency_key is not None and idempotency_key in self._interval_keys:
            return self._interval_keys[idempotency_key]
        self._patient(patient_id)
        if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
            raise DeviceRefused(
                "interval_bounds",
                f"interval {seconds} s is outside [{MIN_INTERVAL_SECONDS}, "
                f"{MAX_INTERVAL_SECONDS}] s",
            )
        self._intervals[patient_id] = seconds
        if idempotency_key is not None:
            self._interval_keys[idempotency_key] = seconds
        return seconds
