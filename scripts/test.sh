#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, lints every package, and runs
# every test tier (unit, integration, e2e) against real services that pytest starts.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m unit` or `-k kafka`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
scripts/prereqs.sh
UV=$(scripts/bootstrap.sh)
export UV_CACHE_DIR="${UV_CACHE_DIR:-${CHORUS_CACHE:-$HOME/.cache/chorus}/uv}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "install (uv sync, locked)"
"$UV" sync --locked --all-packages --quiet
(cd flink && "$UV" sync --locked --quiet)

step "lint: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "lint: mypy (workspace)"
.venv/bin/mypy
step "lint: mypy (flink, its own environment)"
(cd flink && .venv/bin/mypy)
step "generated files are current"
.venv/bin/python -m chorus_api.crdgen --check

step "tests"
.venv/bin/pytest "$@"
echo "test command wall time: $(( $(date +%s) - started ))s"
