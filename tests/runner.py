"""Runs the test tiers one after another and ends with a table: tier, tests, passed, seconds.

    python -m tests.runner              # every tier (what scripts/test.sh runs)
    python -m tests.runner --tier e2e   # some tiers (comma-separated names)
    python -m tests.runner -k kafka     # any pytest arguments: one pytest run, as given

Each tier is its own pytest run (with pytest-xdist workers where the tier says so). The
services a tier needs are started once, before it, and every worker reuses them (a service
already started by hand is reused and left running). The last line sums every tier in the
form CI reads: ``total: N passed, N failed, N skipped``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.services import service
from tests.services.base import CACHE, REPO, ServiceError, in_ci
from tests.tiers import TIERS, Tier

console = Console(highlight=False)


@dataclass(frozen=True)
class Result:
    """One pytest run's counts (from its JUnit XML) and wall time."""

    name: str
    tests: int
    passed: int
    failed: int
    skipped: int
    seconds: float
    exit_code: int
    allowance_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0


def counts(junit: Path) -> tuple[int, int, int]:
    """(tests, failed, skipped) from a JUnit XML report; errors count as failed."""
    if not junit.exists():
        return 0, 0, 0
    root = ElementTree.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests, failed, skipped


RESULTS = CACHE / "test-results"
"""Each tier's JUnit XML (``<tier>.xml``) of the last run, for a closer look at timings."""


def pytest_run(name: str, args: Sequence[str], allowance_s: float | None = None) -> Result:
    RESULTS.mkdir(parents=True, exist_ok=True)
    junit = RESULTS / f"{name if allowance_s is not None else 'pytest'}.xml"
    junit.unlink(missing_ok=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", *args, "--durations=10", f"--junitxml={junit}"],
        cwd=REPO,
    )
    seconds = time.monotonic() - started
    tests, failed, skipped = counts(junit)
    if code not in (0, 1) and failed == 0:
        failed = 1  # interrupted, a usage error, or no test at all (5): never a pass
    passed = tests - failed - skipped
    return Result(name, tests, passed, failed, skipped, seconds, code, allowance_s)


@contextlib.contextmanager
def started(names: Sequence[str]) -> Iterator[None]:
    """The services, up for the block: started here (and stopped after) unless already up."""
    ours = []
    try:
        for name in names:
            made = service(name)
            if made.running() is None:
                console.print(f"[dim]starting {name}[/]")
                try:
                    made.up()
                except ServiceError as exc:
                    # The tier's fixtures then fail (CI) or skip with the same message.
                    console.print(f"[red]{name} did not start[/]: {exc}")
                    continue
                ours.append(made)
        yield
    finally:
        for made in reversed(ours):
            made.down()


def tier_args(tier: Tier) -> list[str]:
    args = ["-m", tier.name, "-p", "no:cacheprovider"]
    if tier.workers:
        args += ["-n", str(tier.workers), "--dist", tier.dist]
    return args


def table(results: Sequence[Result], before_s: float | None) -> Table:
    shown = Table("tier", "tests", "passed", "failed", "skipped", "seconds", "allowance")
    if before_s is not None:
        shown.add_row("install, lint, prepare", "", "", "", "", f"{before_s:.0f}", "")
    for r in results:
        over = r.allowance_s is not None and r.seconds > r.allowance_s
        seconds = f"[yellow]{r.seconds:.0f}[/]" if over else f"{r.seconds:.0f}"
        failed = f"[red]{r.failed}[/]" if r.failed else "0"
        allowance = f"{r.allowance_s:.0f}" if r.allowance_s is not None else ""
        shown.add_row(
            r.name, str(r.tests), str(r.passed), failed, str(r.skipped), seconds, allowance
        )
    total = sum(r.seconds for r in results) + (before_s or 0)
    shown.add_row(
        "[bold]total[/]",
        str(sum(r.tests for r in results)),
        str(sum(r.passed for r in results)),
        str(sum(r.failed for r in results)),
        str(sum(r.skipped for r in results)),
        f"[bold]{total:.0f}[/]",
        "600",
    )
    return shown


def main(argv: list[str]) -> int:
    setup_started = os.environ.get("CHORUS_TEST_STARTED")
    before_s = time.time() - float(setup_started) if setup_started else None
    results: list[Result] = []
    chosen = list(TIERS)
    if argv[:1] == ["--tier"] and len(argv) >= 2:
        chosen = [tier for tier in TIERS if tier.name in argv[1].split(",")]
        argv = argv[2:]
    if argv:
        results.append(pytest_run("pytest " + " ".join(argv), argv))
    else:
        for tier in chosen:
            console.rule(f"[bold]tier {tier.name}[/]: {tier.about}")
            with started(tier.services):
                results.append(pytest_run(tier.name, tier_args(tier), tier.allowance_s))
    console.print(table(results, before_s))
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    passed = sum(r.passed for r in results)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    if in_ci() and skipped:
        # CI never skips for a missing service; the skip reasons are in each tier's summary.
        console.print(f"[yellow]{skipped} skipped in CI: see each tier's summary (-ra)[/]")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
