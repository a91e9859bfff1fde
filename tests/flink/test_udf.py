"""``chorus_flink.udf``: the Java functions give Flink's own answers, from one parse.

The jobs replaced ``IS JSON OBJECT``, ``JSON_VALUE``, ``JSON_EXISTS`` and the event-time
cast with ``CHORUS_*`` functions that parse a payload once per record. Here Flink evaluates
both, side by side in one query, on payloads chosen to tell them apart (numbers Jackson
rewrites, nulls, nested values, duplicate keys, trailing text, broken JSON, timestamps the
cast reads or refuses), built in the flink/ environment with the jar as a job gets it.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services.flink import FLINK, FlinkEnv

sys.path.insert(0, str(FLINK / "src"))
udf: Any = importlib.import_module("chorus_flink.udf")

PAYLOADS = [
    '{"a": "x", "b": 1.50, "c": 3, "d": null, "e": {"f": 1}, "g": [1, {"h": 2}], "h": true}',
    '{"b": 1e2, "c": -0, "a": 12345678901234567890, "h": false, "g": 1.0E-3}',
    '{"a": "\\u00e9\\n", "b": "12.5", "c": " 7 "}',
    '{"a": 1, "a": 2}',
    '{"a": 1} trailing',
    '{"a": 1,',
    '{"a": [1, 2}',
    '{"a": "unterminated}',
    "{a: 1}",
    "not json",
    "",
    "[1, 2]",
    '"a string"',
    "123",
    "null",
    "{}",
    '{"t": "2026-01-01T09:00:00.250Z"}',
    '{"t": "2026-01-01 09:00:00"}',
    '{"t": "2026-01-01T09:00:00.123456Z"}',
    '{"t": "2026-01-01T09:00:00.5Z"}',
    '{"t": "2026-01-01T09:00:00.05"}',
    '{"t": "2024-02-29T23:59:59.999Z"}',
    '{"t": "2026-02-29T00:00:00Z"}',
    '{"t": "2026-01-01T24:00:00Z"}',
    '{"t": "2026-1-01T09:00:00Z"}',
    '{"t": "0999-01-01T09:00:00Z"}',
    '{"t": "2026-01-01T09:00:00.Z"}',
    '{"t": "2026-01-01"}',
    '{"t": "2026-01-01T09:00Z"}',
    '{"t": "noon"}',
    '{"t": "2026-13-01T00:00:00Z"}',
    '{"t": 20260101}',
    '{"t": null}',
    '{"t": "ZZ2026-01-01T09:00:00TZ"}',
    None,
]
NAMES = ["a", "b", "c", "d", "e", "g", "h", "t", "missing"]
"""Field names, as the jobs' are: plain identifiers (``$.name`` needs no quoting)."""

COMPARE = """
import json, sys
from pyflink.table import EnvironmentSettings, TableEnvironment
from chorus_flink import udf
from chorus_flink.kafka import quote

payloads, names = json.loads(sys.argv[1])
t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("parallelism.default", "1")
udf.register(t_env)
rows = ", ".join(
    f"({n}, {'CAST(NULL AS STRING)' if p is None else quote(p)})" for n, p in enumerate(payloads)
)
columns = ["`i`", "`p` IS JSON OBJECT", "CHORUS_IS_JSON_OBJECT(`p`)"]
for name in names:
    columns += [
        f"JSON_VALUE(`p`, {quote('$.' + name)})",
        f"CHORUS_JSON_VALUE(`p`, {quote(name)})",
        f"JSON_EXISTS(`p`, {quote('$.' + name)})",
        f"CHORUS_JSON_EXISTS(`p`, {quote(name)})",
        f"TRY_CAST(REPLACE(REPLACE(JSON_VALUE(`p`, {quote('$.' + name)}), 'T', ' '), 'Z', '')"
        " AS TIMESTAMP(3))",
        f"CHORUS_JSON_TIMESTAMP(`p`, {quote(name)})",
    ]
query = f"SELECT {', '.join(columns)} FROM (VALUES {rows}) AS T(`i`, `p`)"
with t_env.execute_sql(query).collect() as results:
    for row in results:
        print("ROW " + json.dumps([str(v) if v is not None else None for v in row]), flush=True)
"""


@pytest.mark.unit
def test_every_function_has_its_java_class() -> None:
    for name, java_class in udf.FUNCTIONS.items():
        source = FLINK / "udf" / "src" / "main" / "java" / (java_class.replace(".", "/") + ".java")
        assert source.is_file(), name
        declared = f"public final class {java_class.rsplit('.', 1)[1]} extends "
        assert any(
            declared + kind in source.read_text()
            for kind in ("ScalarFunction", "ProcessTableFunction<")
        ), name


@pytest.mark.unit
def test_a_changed_source_means_a_new_build(tmp_path: Path) -> None:
    sources = tmp_path / "udf"
    shutil.copytree(FLINK / "udf", sources, ignore=shutil.ignore_patterns("target"))
    before = udf.source_digest(sources)
    assert udf.source_digest(sources) == before
    java = next(sources.glob("src/**/JsonFields.java"))
    java.write_text(java.read_text() + "\n")
    assert udf.source_digest(sources) != before


@pytest.mark.unit
def test_a_given_jar_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(udf.JAR_ENV, str(tmp_path / "nothing.jar"))
    with pytest.raises(udf.UdfJarError, match=r"CHORUS_FLINK_UDF_JAR=.*nothing\.jar: no such"):
        udf.local_jar()
    (tmp_path / "given.jar").write_bytes(b"PK")
    monkeypatch.setenv(udf.JAR_ENV, str(tmp_path / "given.jar"))
    assert udf.local_jar() == (tmp_path / "given.jar").resolve()


@pytest.mark.integration
def test_the_java_functions_agree_with_flinks_json_functions(
    flink: FlinkEnv, tmp_path: Path
) -> None:
    script = tmp_path / "compare_json.py"
    script.write_text(COMPARE)
    result = flink.run_job(str(script), [json.dumps([PAYLOADS, NAMES])], timeout=300)
    rows = [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]
    assert sorted(int(r[0]) for r in rows) == list(range(len(PAYLOADS))), result.stdout
    objects = 0
    for row in rows:
        payload = PAYLOADS[int(row[0])]
        flink_object, chorus_object = row[1], row[2]
        assert chorus_object == (flink_object if payload is not None else "False"), payload
        objects += flink_object == "True"
        for n, name in enumerate(NAMES):
            value, c_value, exists, c_exists, time, c_time = row[3 + 6 * n : 9 + 6 * n]
            where = f"payload {payload!r}, field {name!r}"
            assert c_value == value, where
            assert c_time == time, where
            if flink_object == "True":  # elsewhere the jobs stop at invalid_json first
                assert c_exists == exists, where
    # the payloads cover what they are meant to: objects and not, every kind of answer
    assert objects == 24  # incl. the trailing text, which Flink reads as an object too
    assert {r[3 + 6 * NAMES.index("b")] for r in rows} >= {"1.50", "1E+2", "12.5"}
    assert sum(r[3 + 6 * NAMES.index("t") + 4] is not None for r in rows) >= 8
