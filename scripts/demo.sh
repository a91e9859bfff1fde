#!/usr/bin/env bash
# The main job (README): installs what it needs, then runs the trading domain locally:
# `chorus dev up trading` (Kafka, Flink, the exchange MCP server, four agents, a feed, a report).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
UV=$(scripts/bootstrap.sh)
export UV_CACHE_DIR="${UV_CACHE_DIR:-${CHORUS_CACHE:-$HOME/.cache/chorus}/uv}"
"$UV" sync --locked --all-packages --quiet
(cd flink && "$UV" sync --locked --quiet)
exec .venv/bin/chorus dev up "${DOMAIN:-trading}" "$@"
