#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, lints every package, installs the
# services and tools (`python -m tests.services prepare`, cached), and runs every test tier
# (tests/tiers.py) against real services, ending with a table per tier.
# Arguments make it a quick run instead: lint, then one pytest with them, nothing installed
# beyond the environments (`scripts/test.sh -m unit`, `scripts/test.sh tests/api`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
scripts/prereqs.sh
UV=$(scripts/bootstrap.sh)
export UV_CACHE_DIR="${UV_CACHE_DIR:-${CHORUS_CACHE:-$HOME/.cache/chorus}/uv}"
# Bytecode caches on, even where the environment turns them off: each stage's pytest (and
# each of its workers) collects every test module, and without the cache pytest rewrites
# and compiles them all again each time (7 CPU seconds a collection here, 3.5 with it).
unset PYTHONDONTWRITEBYTECODE

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

if [ "$#" -gt 0 ]; then
  # A run with pytest arguments (`scripts/test.sh -m unit`) installs nothing more: a test
  # whose service is not installed skips, naming the command that installs it.
  step "tests (pytest $*)"
  exec .venv/bin/python -m tests.runner "$@"
fi

step "prepare: services and tools (cached in ${CHORUS_CACHE:-$HOME/.cache/chorus}; the first run builds them)"
if ! .venv/bin/python -m tests.services prepare; then
  # In CI a missing piece fails the run at once; elsewhere the tests that need it skip,
  # each with the message above.
  ci="${CI:-}"
  [[ "${ci,,}" =~ ^(1|true|yes)$ ]] && { echo "prepare failed: see above" >&2; exit 1; }
  echo "prepare failed: the tests that need the services above will skip" >&2
fi

step "tests: every tier in turn, each its own pytest, then a table of them"
CHORUS_TEST_STARTED=$started exec .venv/bin/python -m tests.runner
