#!/usr/bin/env bash
# Installs the tools every other script needs, once, into the Chorus cache:
# uv (which then installs Python packages from the lock files). Prints uv's path.
set -euo pipefail
UV_VERSION=0.13.9
cache="${CHORUS_CACHE:-$HOME/.cache/chorus}"
tools="$cache/tools/uv-$UV_VERSION"
if [ ! -x "$tools/bin/uv" ]; then
  echo "bootstrap: installing uv $UV_VERSION into $tools" >&2
  python3 -m venv "$tools" >&2
  "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
fi
echo "$tools/bin/uv"
