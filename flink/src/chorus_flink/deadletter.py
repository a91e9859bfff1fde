"""Splitting a raw stream into usable rows and dead letters, in SQL.

A job lists the fields it needs from each JSON record (:class:`Field`). :func:`checked_view`
parses a raw source (:func:`chorus_flink.tables.raw_source_table`) and gives every record a
``dead_letter_reason``, NULL when the record is usable; :func:`valid_view` keeps the usable
rows with their fields typed (and ``event_time`` still the rowtime attribute);
:func:`dead_letter_insert` writes the others, with the original payload, to the job's
dead-letter sink (:func:`chorus_flink.tables.dead_letter_sink_table`).

Reasons, the first that applies:

==========================  =================================================================
``invalid_json``            the value is not a JSON object (or is empty / a tombstone)
``missing_field:<name>``    a required field is absent
``invalid_field:<name>``    present but null, of the wrong type, or failing the field's check
``late``                    ``event_time`` is at or before the watermark when the record
                            arrives: a window or OVER aggregate would drop it silently, so the
                            job routes it here instead (the late-data policy: never drop)
==========================  =================================================================

Field values may be JSON numbers or strings holding numbers (``"12.5"``); ``event_time`` is an
ISO-8601 UTC timestamp (see :mod:`chorus_flink.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chorus_flink.config import JobConfig
from chorus_flink.kafka import ident, quote
from chorus_flink.tables import event_time_text

SQL_TYPES = frozenset({"STRING", "DOUBLE", "BIGINT", "INT", "BOOLEAN"})
LATE = "late"
INVALID_JSON = "invalid_json"


@dataclass(frozen=True)
class Field:
    """A field of the input records.

    ``sql_type`` is one of :data:`SQL_TYPES`. ``check`` is an SQL predicate on the typed
    value, written with ``{}`` for it (``"{} > 0"``); a value failing it is invalid. An
    optional field (``required=False``) may be absent or null (then the column is NULL), but
    if present it must have the right type and pass the check.
    """

    name: str
    sql_type: str
    required: bool = True
    check: str | None = None

    def __post_init__(self) -> None:
        if self.sql_type not in SQL_TYPES:
            raise ValueError(f"field {self.name}: type {self.sql_type} not in {sorted(SQL_TYPES)}")
        if self.name == "event_time":
            raise ValueError("field event_time: the raw source provides it; do not list it")

    @property
    def text(self) -> str:
        """SQL: the field as the payload holds it (a string, NULL if absent/null/nested)."""
        return f"JSON_VALUE(`payload`, {quote('$.' + self.name)})"

    @property
    def value(self) -> str:
        """SQL: the typed value, NULL if it is absent or cannot be converted."""
        if self.sql_type == "STRING":
            return self.text
        return f"TRY_CAST({self.text} AS {self.sql_type})"

    def problems(self) -> list[tuple[str, str]]:
        """(condition, reason) pairs, SQL conditions in the order they are tested."""
        exists = f"JSON_EXISTS(`payload`, {quote('$.' + self.name)})"
        found: list[tuple[str, str]] = []
        invalid = f"invalid_field:{self.name}"
        if self.required:
            found.append((f"NOT {exists}", f"missing_field:{self.name}"))
            found.append((f"{self.value} IS NULL", invalid))
        else:
            found.append((f"{self.text} IS NOT NULL AND {self.value} IS NULL", invalid))
        if self.check is not None:
            found.append((f"NOT ({self.check.format(self.value)})", invalid))
        return found


def event_time_problems(field: str = "event_time") -> list[tuple[str, str]]:
    """The event-time field's (condition, reason) pairs: missing, or not a timestamp."""
    path = quote(f"$.{field}")
    text = event_time_text(field)
    return [
        (f"NOT JSON_EXISTS(`payload`, {path})", f"missing_field:{field}"),
        (f"TRY_CAST({text} AS TIMESTAMP(3)) IS NULL", f"invalid_field:{field}"),
    ]


def reason_sql(fields: Sequence[Field], event_time_field: str = "event_time") -> str:
    """SQL: the CASE expression giving a raw record's dead-letter reason, NULL if usable."""
    whens = [("`payload` IS NULL OR NOT (`payload` IS JSON OBJECT)", INVALID_JSON)]
    for f in fields:
        whens += f.problems()
    whens += event_time_problems(event_time_field)
    whens.append(("`event_time` <= CURRENT_WATERMARK(`event_time`)", LATE))
    body = "\n    ".join(f"WHEN {cond} THEN {quote(reason)}" for cond, reason in whens)
    return f"CASE\n    {body}\n    ELSE CAST(NULL AS STRING)\n  END"


def checked_view(name: str, raw: str, fields: Sequence[Field]) -> str:
    """DDL: view ``name`` over raw source ``raw``: its columns plus ``dead_letter_reason``."""
    return (
        f"CREATE TEMPORARY VIEW {ident(name)} AS\nSELECT\n  `payload`, `source_topic`, "
        f"`source_partition`, `source_offset`, `event_time`,\n  {reason_sql(fields)} "
        f"AS `dead_letter_reason`\nFROM {ident(raw)}"
    )


def valid_view(name: str, checked: str, fields: Sequence[Field]) -> str:
    """DDL: view ``name`` of the usable records.

    Columns: each field typed, then ``event_time`` (rowtime), ``source_partition`` and
    ``source_offset`` (which identify a record, e.g. for a signal id).
    """
    columns = ",\n  ".join(f"{f.value} AS {ident(f.name)}" for f in fields)
    return (
        f"CREATE TEMPORARY VIEW {ident(name)} AS\nSELECT\n  {columns},\n  `event_time`, "
        "`source_partition`, `source_offset`\n"
        f"FROM {ident(checked)}\nWHERE `dead_letter_reason` IS NULL"
    )


def dead_letter_insert(sink: str, checked: str, job: JobConfig) -> str:
    """SQL: INSERT the records of view ``checked`` that have a reason into ``sink``."""
    return (
        f"INSERT INTO {ident(sink)}\nSELECT `dead_letter_reason`, `payload`, `source_topic`, "
        f"`source_partition`, `source_offset`, {quote(job.job)},\n"
        "  MAP['chorus-dead-letter-reason', CAST(`dead_letter_reason` AS BYTES)]\n"
        f"FROM {ident(checked)}\nWHERE `dead_letter_reason` IS NOT NULL"
    )
