"""flink/Dockerfile pins the same versions as flink/pyproject.toml, flink/pom.xml and the
FlinkDeployment builder (``PYTHON_JAR``), so the image runs what tests ran."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET

import pytest
from chorus_api.streams import PYTHON_JAR

from tests.services.flink import FLINK

pytestmark = pytest.mark.unit

DOCKERFILE = (FLINK / "Dockerfile").read_text()
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def arg(name: str) -> str:
    found = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert found, f"flink/Dockerfile: no ARG {name}=..."
    return found.group(1)


def pom_property(name: str) -> str:
    root = ET.parse(FLINK / "pom.xml").getroot()
    value = root.findtext(f"m:properties/m:{name}", namespaces=POM_NS)
    assert value, f"flink/pom.xml: no property {name}"
    return value


def test_flink_version_matches_the_wheel_the_pom_and_the_python_jar() -> None:
    version = arg("FLINK_VERSION")
    project = tomllib.loads((FLINK / "pyproject.toml").read_text())["project"]
    assert f"apache-flink=={version}" in project["dependencies"]
    assert pom_property("flink.version") == version
    assert f"local:///opt/flink/opt/flink-python-{version}.jar" == PYTHON_JAR
    assert re.search(r"^FROM flink:\$\{FLINK_VERSION\}-scala_2\.12-java17$", DOCKERFILE, re.M)


def test_connector_and_python_match_the_pins() -> None:
    assert arg("KAFKA_CONNECTOR_VERSION") == pom_property("flink.kafka.connector.version")
    requires = tomllib.loads((FLINK / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={arg('PYTHON_VERSION')},<3.12"


def test_dependencies_come_from_the_lock() -> None:
    assert "uv sync --locked --no-dev" in DOCKERFILE
    assert "COPY flink/pyproject.toml flink/uv.lock" in DOCKERFILE


def test_the_java_functions_are_built_into_flinks_lib() -> None:
    assert "COPY flink/udf ./" in DOCKERFILE
    assert (
        "COPY --from=udf /build/target/chorus-flink-udf.jar /opt/flink/lib/chorus-flink-udf.jar"
        in DOCKERFILE
    )
    root = ET.parse(FLINK / "udf" / "pom.xml").getroot()
    assert root.findtext("m:properties/m:flink.version", namespaces=POM_NS) == arg("FLINK_VERSION")
    assert root.findtext("m:build/m:finalName", namespaces=POM_NS) == "chorus-flink-udf"
