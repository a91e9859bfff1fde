"""Splitting a raw stream into usable rows and dead letters, in SQL.

A job lists the fields it needs from each JSON record (:class:`Field`). :func:`checked_query`
parses a raw source (:func:`chorus_flink.tables.raw_source_table`) once per record (with
:mod:`chorus_flink.udf`'s functions, registered by the job before its source) and gives
it its typed fields and a ``dead_letter_reason``, NULL when the record is usable
(:func:`register_checked` makes it a view computed once for all its readers);
:func:`valid_view` keeps the usable rows (``event_time`` still the rowtime attribute);
:func:`dead_letter_insert` writes the others, with the original payload, to the job's
dead-letter sink (:func:`chorus_flink.tables.dead_letter_sink_table`).

Reasons, the first that applies:

==========================  =================================================================
``invalid_json``            the value is not a JSON object (or is empty / a tombstone)
``missing_field:<name>``    a required field is absent, or JSON null (``JSON_EXISTS``'s rule)
``invalid_field:<name>``    present but of the wrong type, or failing the field's check
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
from typing import TYPE_CHECKING

from chorus_flink.config import JobConfig
from chorus_flink.kafka import ident, quote
from chorus_flink.tables import RAW_COLUMNS, event_time_value

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment

SQL_TYPES = frozenset({"STRING", "DOUBLE", "BIGINT", "INT", "BOOLEAN"})
LATE = "late"
INVALID_JSON = "invalid_json"
RESERVED_NAMES = frozenset(
    {c.split("`")[1] for c in RAW_COLUMNS}
    | {"event_time", "dead_letter_reason", "arrival_watermark", "_watermark"}
)
"""Columns of the checked view besides the fields: no field may take one of these names."""


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
        if self.name in RESERVED_NAMES:
            raise ValueError(f"field {self.name}: the raw source provides it; do not list it")

    @property
    def text(self) -> str:
        """SQL: the field as the payload holds it (a string, NULL if absent/null/nested)."""
        return f"CHORUS_JSON_VALUE(`payload`, {quote(self.name)})"

    @property
    def value(self) -> str:
        """SQL: the typed value, NULL if it is absent or cannot be converted."""
        return self.typed(self.text)

    def typed(self, text: str) -> str:
        """SQL: ``text`` (the field's text, as :attr:`text` gives it) converted to the type."""
        return text if self.sql_type == "STRING" else f"TRY_CAST({text} AS {self.sql_type})"

    @property
    def exists(self) -> str:
        """SQL: whether the payload has the field with a value other than null.

        As ``JSON_EXISTS`` has it: ``{"price": null}`` has no ``price`` (``missing_field``).
        """
        return f"CHORUS_JSON_EXISTS(`payload`, {quote(self.name)})"

    def problems(self, text: str | None = None, exists: str | None = None) -> list[tuple[str, str]]:
        """(condition, reason) pairs, SQL conditions in the order they are tested.

        ``text`` and ``exists`` replace :attr:`text` and :attr:`exists` (columns holding
        them, so that the payload is not parsed again for each condition).
        """
        value = self.typed(self.text if text is None else text)
        found: list[tuple[str, str]] = []
        invalid = f"invalid_field:{self.name}"
        if self.required:
            found.append(
                (f"NOT {self.exists if exists is None else exists}", f"missing_field:{self.name}")
            )
            found.append((f"{value} IS NULL", invalid))
        else:
            found.append(
                (f"{self.text if text is None else text} IS NOT NULL AND {value} IS NULL", invalid)
            )
        if self.check is not None:
            found.append((f"NOT ({self.check.format(value)})", invalid))
        return found


def event_time_problems(
    field: str = "event_time", value: str | None = None, exists: str | None = None
) -> list[tuple[str, str]]:
    """The event-time field's (condition, reason) pairs: missing, or not a timestamp.

    ``value`` and ``exists`` replace the field's TIMESTAMP(3) value (NULL if unreadable) and
    presence (columns holding them).
    """
    if exists is None:
        exists = f"CHORUS_JSON_EXISTS(`payload`, {quote(field)})"
    if value is None:
        value = event_time_value(field)
    return [
        (f"NOT {exists}", f"missing_field:{field}"),
        (f"{value} IS NULL", f"invalid_field:{field}"),
    ]


def _reason(whens: Sequence[tuple[str, str]]) -> str:
    body = "\n    ".join(f"WHEN {cond} THEN {quote(reason)}" for cond, reason in whens)
    return f"CASE\n    {body}\n    ELSE CAST(NULL AS STRING)\n  END"


INVALID_JSON_CONDITION = "`payload` IS NULL OR NOT CHORUS_IS_JSON_OBJECT(`payload`)"
LATE_CONDITION = "`event_time` <= CURRENT_WATERMARK(`event_time`)"


def reason_sql(fields: Sequence[Field], event_time_field: str = "event_time") -> str:
    """SQL: the CASE expression giving a raw record's dead-letter reason, NULL if usable."""
    whens = [(INVALID_JSON_CONDITION, INVALID_JSON)]
    for f in fields:
        whens += f.problems()
    whens += event_time_problems(event_time_field)
    whens.append((LATE_CONDITION, LATE))
    return _reason(whens)


def checked_query(raw: str, fields: Sequence[Field], event_time_field: str = "event_time") -> str:
    """SQL query over raw source ``raw``: every record, parsed, with its ``dead_letter_reason``.

    Columns: ``payload``, ``source_topic``, ``source_partition``, ``source_offset``,
    ``event_time``, each field typed (NULL where absent or unusable), ``dead_letter_reason``
    (the same reason as :func:`reason_sql`) and ``arrival_watermark`` (the watermark when the
    record arrived). Register it with :func:`register_checked`, so that the dead letters and
    the usable rows read one computation of it.

    The payload is read with :mod:`chorus_flink.udf`'s functions, which parse it once per
    record however many fields are asked for (Flink's own JSON functions parse it on every
    call). An inner query extracts each field's text and presence once; the reason and the
    typed values are computed from those columns, so each condition does not ask again. The
    planner merges a projection into the one above it unless that would evaluate a
    non-deterministic expression twice: ``CURRENT_WATERMARK`` is one, and the outer query
    reads it twice (the late rule and ``arrival_watermark``), which keeps the inner query's
    columns computed once.
    """
    t_time, e_time = ident("_t_" + event_time_field), ident("_e_" + event_time_field)
    inner = [
        f"{event_time_value(event_time_field)} AS {t_time}",
        f"CHORUS_JSON_EXISTS(`payload`, {quote(event_time_field)}) AS {e_time}",
        "CURRENT_WATERMARK(`event_time`) AS `_watermark`",
    ]
    whens = [(INVALID_JSON_CONDITION, INVALID_JSON)]
    typed = []
    for f in fields:
        t_field, e_field = ident("_t_" + f.name), ident("_e_" + f.name)
        inner.append(f"{f.text} AS {t_field}")
        if f.required:
            inner.append(f"{f.exists} AS {e_field}")
        whens += f.problems(text=t_field, exists=e_field)
        typed.append(f"{f.typed(t_field)} AS {ident(f.name)}")
    whens += event_time_problems(event_time_field, value=t_time, exists=e_time)
    whens.append(("`event_time` <= `_watermark`", LATE))
    outer = [
        "`payload`, `source_topic`, `source_partition`, `source_offset`, `event_time`",
        *typed,
        f"{_reason(whens)} AS `dead_letter_reason`",
        "`_watermark` AS `arrival_watermark`",
    ]
    return (
        "SELECT\n  "
        + ",\n  ".join(outer)
        + "\nFROM (\n  SELECT *,\n    "
        + ",\n    ".join(inner)
        + f"\n  FROM {ident(raw)}\n)"
    )


def register_checked(
    t_env: StreamTableEnvironment, name: str, raw: str, fields: Sequence[Field]
) -> None:
    """Registers :func:`checked_query` as the temporary view ``name``, parsed once per record.

    A view created with ``CREATE TEMPORARY VIEW`` is expanded again wherever it is read, and
    the planner merged each copy into its reader's Calc, so a job with dead letters, a
    window and an OVER aggregate parsed every payload in four operators. A view made from
    one planned ``Table`` is one node of the plan: the optimizer computes it once (one Calc
    chained to the source) and every reader consumes its output.
    """
    t_env.create_temporary_view(name, t_env.sql_query(checked_query(raw, fields)))


def valid_view(name: str, checked: str, fields: Sequence[Field]) -> str:
    """DDL: view ``name`` of the usable records of the checked view ``checked``.

    Columns: each field typed, then ``event_time`` (rowtime), ``source_partition`` and
    ``source_offset`` (which identify a record, e.g. for a signal id).
    """
    columns = "".join(f"{ident(f.name)}, " for f in fields)
    return (
        f"CREATE TEMPORARY VIEW {ident(name)} AS\nSELECT\n  {columns}`event_time`, "
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
