"""The long-build runner the cluster's and the Pulumi engine's builders share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.base import ServiceError
from tests.services.gobuild import minutes, run_go

pytestmark = pytest.mark.unit


def test_a_build_logs_its_output_and_a_failure_ends_with_its_tail(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    said: list[str] = []
    run_go(["sh", "-c", "echo pkg/a >&2; echo pkg/b >&2"], what="x", cwd=tmp_path, log=log,
           say=said.append)  # fmt: skip
    assert "pkg/a\npkg/b" in log.read_text() and said == []
    with pytest.raises(ServiceError, match=r"(?s)cluster: go build y failed \(3\):.*broken"):
        run_go(["sh", "-c", "echo broken >&2; exit 3"], what="cluster: go build y",
               cwd=tmp_path, log=log, say=said.append)  # fmt: skip
    assert minutes(125.9) == "2m05s"
