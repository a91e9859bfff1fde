"""Chorus' Java functions: reading a raw JSON payload once per record.

Flink's ``IS JSON OBJECT``, ``JSON_VALUE`` and ``JSON_EXISTS`` parse the whole payload on
every call; a signal job asks a dozen such questions per record (is it an object, each
field's text and presence, the event time for the source's watermark, its computed column
and the late rule). The Java module in ``flink/udf`` (``dev.chorus.flink``) answers them from
one parse per record and thread, with Flink 2.2's own answers (see ``JsonFields.java``):

=========================================  ===================================================
``CHORUS_IS_JSON_OBJECT(payload)``         ``payload IS JSON OBJECT`` (FALSE for NULL)
``CHORUS_JSON_VALUE(payload, 'name')``     ``JSON_VALUE(payload, '$.name')``
``CHORUS_JSON_EXISTS(payload, 'name')``    ``JSON_EXISTS(payload, '$.name')``
``CHORUS_JSON_TIMESTAMP(payload, 'name')`` ``TRY_CAST(REPLACE(REPLACE(JSON_VALUE(payload,
                                           '$.name'), 'T', ' '), 'Z', '') AS TIMESTAMP(3))``
=========================================  ===================================================

(Flink 2.2's ``VARIANT`` cannot replace them: ``PARSE_JSON`` works, but 2.2 has neither item
access on a ``VARIANT`` nor a cast from it to a ``ROW``, ``MAP`` or scalar.)

The module also holds ``CHORUS_PRICE_SPIKES``, a process table function (``PriceSpikes.java``)
the trading job calls in place of an event-time OVER window (see
:func:`chorus_flink.jobs.trading.price_spikes`); it is registered the same way.

**Where the jar comes from.** On the image it is in ``/opt/flink/lib`` (``flink/Dockerfile``
builds it), so the classes are on Flink's classpath and nothing is added. Locally,
:func:`register` adds the jar to ``pipeline.jars``: ``CHORUS_FLINK_UDF_JAR`` if set, else
the one built from ``flink/udf`` of this checkout with Maven into the cache
(``$CHORUS_CACHE/flink/udf-<hash of the sources>/``), once per change of the sources.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment

FUNCTIONS = {
    "CHORUS_IS_JSON_OBJECT": "dev.chorus.flink.IsJsonObject",
    "CHORUS_JSON_VALUE": "dev.chorus.flink.JsonValue",
    "CHORUS_JSON_EXISTS": "dev.chorus.flink.JsonExists",
    "CHORUS_JSON_TIMESTAMP": "dev.chorus.flink.JsonTimestamp",
    "CHORUS_PRICE_SPIKES": "dev.chorus.flink.PriceSpikes",
}
"""SQL name to Java class, registered as temporary system functions."""

JAR_ENV = "CHORUS_FLINK_UDF_JAR"
JAR_NAME = "chorus-flink-udf.jar"
SOURCES = Path(__file__).resolve().parents[2] / "udf"
"""``flink/udf`` in a checkout; absent where the package is installed (the image)."""


class UdfJarError(RuntimeError):
    """The functions' jar is neither given, nor in the image, nor buildable here."""


def cache_root() -> Path:
    return Path(os.environ.get("CHORUS_CACHE", Path.home() / ".cache" / "chorus")) / "flink"


def source_digest(sources: Path = SOURCES) -> str:
    """A hash of the module's pom and Java sources: a new one means a new build."""
    digest = hashlib.sha256()
    for path in sorted([sources / "pom.xml", *sources.glob("src/**/*.java")]):
        digest.update(str(path.relative_to(sources)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_jar(sources: Path = SOURCES, root: Path | None = None) -> Path:
    """The jar built from ``sources`` with Maven, built once per change of them.

    Maven builds into a temporary sibling that is renamed at the end, so two jobs starting
    at once both end with one complete jar and an interrupted build leaves nothing behind.
    """
    root = cache_root() if root is None else root
    done = root / f"udf-{source_digest(sources)}"
    jar = done / JAR_NAME
    if jar.is_file():
        return jar
    if shutil.which("mvn") is None:
        raise UdfJarError(
            f"chorus_flink.udf: building {sources} needs mvn on PATH (or set {JAR_ENV})"
        )
    partial = root / f".{done.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    build = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(sources / "pom.xml"),
            f"-Dchorus.build.directory={partial / 'build'}",
            "package",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    built = partial / "build" / JAR_NAME
    if build.returncode != 0 or not built.is_file():
        shutil.rmtree(partial, ignore_errors=True)
        raise UdfJarError(
            f"chorus_flink.udf: mvn package of {sources} failed\n{build.stdout}{build.stderr}"
        )
    built.rename(partial / JAR_NAME)
    shutil.rmtree(partial / "build")
    try:
        partial.rename(done)
    except OSError:  # another job finished first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
    if not jar.is_file():
        raise UdfJarError(f"chorus_flink.udf: no {jar} after building {sources}")
    return jar


def local_jar() -> Path | None:
    """The jar to add to ``pipeline.jars``: ``$CHORUS_FLINK_UDF_JAR``, or built from the
    checkout; None where there is no checkout (the image has the jar in ``lib``)."""
    given = os.environ.get(JAR_ENV, "")
    if given:
        path = Path(given).resolve()
        if not path.is_file():
            raise UdfJarError(f"{JAR_ENV}={given}: no such file")
        return path
    if not (SOURCES / "pom.xml").is_file():
        return None
    return build_jar()


def register(t_env: StreamTableEnvironment) -> None:
    """Registers :data:`FUNCTIONS`, adding the local jar (if any) to ``pipeline.jars`` first."""
    jar = local_jar()
    if jar is not None:
        config = t_env.get_config()
        jars = [j for j in config.get("pipeline.jars", "").split(";") if j]
        if jar.as_uri() not in jars:
            config.set("pipeline.jars", ";".join([*jars, jar.as_uri()]))
    for name, java_class in FUNCTIONS.items():
        t_env.execute_sql(
            f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{java_class}' LANGUAGE JAVA"
        )
