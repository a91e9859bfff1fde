"""Before a service starts: the upstream CRDs are the pinned ones, and a missing CRD, jar or
binary stops it with the path and the fix (a service never starts half-made)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.services.base import CACHE, ServiceError
from tests.services.kube import (
    CHORUS_CRDS,
    THIRD_PARTY_CRDS,
    KubeService,
    crd_files,
    pinned_crds,
)

pytestmark = pytest.mark.unit


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pinned_upstream_crds_are_strimzi_1_2_and_flink_operator_1_15() -> None:
    pinned = pinned_crds()
    assert sorted(pinned) == [
        "flink-operator/flinkdeployments.flink.apache.org-v1.yml",
        "flink-operator/flinksessionjobs.flink.apache.org-v1.yml",
        "flink-operator/flinkstatesnapshots.flink.apache.org-v1.yml",
        "strimzi/040-Crd-kafka.yaml",
        "strimzi/043-Crd-kafkatopic.yaml",
        "strimzi/044-Crd-kafkauser.yaml",
        "strimzi/045-Crd-kafkanodepool.yaml",
    ]
    readme = (THIRD_PARTY_CRDS / "README.md").read_text()
    assert "| 1.2.0 (Kafka 4.2.x to 4.3.x) |" in readme
    assert "| 1.15.0 (Flink up to 2.3) |" in readme
    assert "Apache License" in (THIRD_PARTY_CRDS / "LICENSE").read_text()


def test_what_the_harness_installs_matches_the_pinned_sums() -> None:
    pinned = pinned_crds()
    files = crd_files()
    upstream = [path for path in files if not path.is_relative_to(CHORUS_CRDS)]
    assert {str(path.relative_to(THIRD_PARTY_CRDS)): sha256(path) for path in upstream} == pinned
    # Then Chorus' own, after the upstream ones (nothing else is installed).
    assert [path.parent for path in files[len(upstream) :]] == [CHORUS_CRDS, CHORUS_CRDS]


def copied_crds(tmp_path: Path) -> Path:
    """A copy of the pinned CRD folder, to take a file out of or change."""
    copy = tmp_path / "crds"
    shutil.copytree(THIRD_PARTY_CRDS, copy)
    return copy


def test_a_changed_crd_file_is_caught_by_the_sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the sums test above can fail. One byte changed in a copy is a mismatch."""
    copy = copied_crds(tmp_path)
    changed = copy / "strimzi" / "044-Crd-kafkauser.yaml"
    changed.write_text(changed.read_text().replace("KafkaUser", "KafkaUsr", 1))
    monkeypatch.setenv("CHORUS_CRDS", str(copy))
    found = {str(p.relative_to(copy)): sha256(p) for p in crd_files() if p.is_relative_to(copy)}
    assert found != pinned_crds()
    assert [name for name, digest in found.items() if pinned_crds()[name] != digest] == [
        "strimzi/044-Crd-kafkauser.yaml"
    ]


def test_the_harness_refuses_to_start_without_a_crd_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = copied_crds(tmp_path)
    missing = copy / "strimzi" / "044-Crd-kafkauser.yaml"
    missing.unlink()
    monkeypatch.setenv("CHORUS_CRDS", str(copy))
    work = CACHE / "work"
    before = set(work.glob("kube-*")) if work.exists() else set()

    service = KubeService()
    monkeypatch.setattr(KubeService, "running", lambda self: None)  # not one started by hand
    with pytest.raises(ServiceError) as refused, service.session(install=False):
        pytest.fail("the apiserver started without the KafkaUser CRD")
    message = str(refused.value)
    assert str(missing) in message
    assert "CHORUS_CRDS" in message  # the fix: unset it, or complete the folder
    # Refused before anything started: no work directory, no process.
    after = set(work.glob("kube-*")) if work.exists() else set()
    assert after == before


def test_without_the_override_the_fix_is_to_restore_the_pinned_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.services.kube as kube

    copy = copied_crds(tmp_path)
    (copy / "flink-operator" / "flinkdeployments.flink.apache.org-v1.yml").unlink()
    monkeypatch.delenv("CHORUS_CRDS", raising=False)
    monkeypatch.setattr(kube, "THIRD_PARTY_CRDS", copy)
    with pytest.raises(ServiceError, match="git checkout -- tests/third_party/crds") as refused:
        KubeService().check()
    assert "flinkdeployments.flink.apache.org-v1.yml" in str(refused.value)


def test_a_missing_jar_is_named_with_the_fix(tmp_path: Path) -> None:
    from chorus_agents.dev.services.kafka import (
        JAR_LIST,
        POM,
        check_maven_jars,
        maven_jars_dir,
    )

    jars = maven_jars_dir(POM, tmp_path)
    with pytest.raises(ServiceError, match="are not resolved") as unresolved:
        check_maven_jars(POM, tmp_path, what="kafka")
    assert str(jars / JAR_LIST) in str(unresolved.value)

    jars.mkdir()
    (jars / JAR_LIST).write_text("kafka-clients-4.3.1.jar\nkafka_2.13-4.3.1.jar\n")
    (jars / "kafka-clients-4.3.1.jar").write_bytes(b"")
    with pytest.raises(ServiceError) as missing:
        check_maven_jars(POM, tmp_path, what="kafka")
    message = str(missing.value)
    assert str(jars / "kafka_2.13-4.3.1.jar") in message
    assert f"remove {jars} and run again" in message
    (jars / "kafka_2.13-4.3.1.jar").write_bytes(b"")
    assert check_maven_jars(POM, tmp_path, what="kafka") == jars


def test_missing_kube_binaries_are_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = KubeService()
    monkeypatch.setattr(KubeService, "bin_dir", lambda self: tmp_path / "bin")
    with pytest.raises(ServiceError) as refused:
        service.check()
    message = str(refused.value)
    assert str(tmp_path / "bin" / "chorus-apiserver") in message
    assert "python -m tests.services kube prepare" in message


def test_a_missing_helm_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tests.services.helm as helm

    monkeypatch.setattr(helm, "CACHE", tmp_path)
    with pytest.raises(ServiceError) as refused:
        helm.check_helm()
    assert str(tmp_path / "tools" / f"helm-{helm.HELM_VERSION}" / "helm") in str(refused.value)
    assert "python -m tests.services helm prepare" in str(refused.value)
