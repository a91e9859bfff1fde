#!/usr/bin/env bash
# Checks the machine has what Chorus builds with; says what is missing and how to get it.
#   scripts/prereqs.sh          what every test run needs
#   scripts/prereqs.sh images   and, for the opt-in images tier, the Debian packages that build
#                               the images (installed with apt-get when run as root)
set -euo pipefail
missing=0
need() {  # need <command> <what it is for> <how to install>
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: $1 ($2). Install: $3" >&2
    missing=1
  fi
}
need python3 "Python 3.11, every Chorus package" "apt-get install python3 python3-venv"
need java "Java 17, the Kafka broker and Flink" "apt-get install openjdk-17-jdk-headless"
need mvn "Maven, resolves Kafka and the Flink Kafka connector from Maven Central" "apt-get install maven"
need go "Go 1.26, builds the test kube-apiserver and kubectl" "https://go.dev/doc/install"
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
    echo "missing: Python 3.11 as python3 (found $(python3 --version 2>&1))" >&2; missing=1; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    echo "missing: python3 venv/ensurepip. Install: apt-get install python3-venv" >&2; missing=1; }
fi
if [ "${1:-}" = images ]; then
  # buildah builds the Dockerfiles, runc runs their steps and the built images, debootstrap
  # makes the python stand-in base, unshare (util-linux) gives buildah a private /var/lib.
  packages=()
  for pair in buildah:buildah runc:runc debootstrap:debootstrap unshare:util-linux; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || packages+=("${pair#*:}")
  done
  if [ "${#packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "prereqs: installing ${packages[*]} (the images tier)" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >&2
    else
      echo "missing: ${packages[*]} (the images tier). Install, as root:" \
        "apt-get install --no-install-recommends ${packages[*]}" >&2
      missing=1
    fi
  fi
fi
exit "$missing"
