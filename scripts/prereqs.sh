#!/usr/bin/env bash
# Checks the machine has what Chorus builds with; says what is missing and how to get it.
#   scripts/prereqs.sh            what every test run needs (the cluster tier's packages: listed)
#   scripts/prereqs.sh --install  and installs the cluster tier's Debian packages (as root)
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
# The cluster tier (a real one-node cluster: tests/services/cluster, and the images it runs,
# built by buildah on a python stand-in made by debootstrap: tests/services/images) also needs
# root and these Debian packages. Without them that tier skips outside CI, naming what is
# missing, and fails in CI. `scripts/prereqs.sh --install` installs them (as root).
cluster_packages=(containerd runc buildah containernetworking-plugins iptables iproute2 conntrack
  debootstrap util-linux)
absent=()
for package in "${cluster_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || absent+=("$package")
done
if [ "${#absent[@]}" -gt 0 ]; then
  if [ "${1:-}" = "--install" ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${absent[@]}"
  else
    echo "the cluster tier needs: ${absent[*]} (install: scripts/prereqs.sh --install, as root)" >&2
    ci="${CI:-}"
    [[ "${ci,,}" =~ ^(1|true|yes)$ ]] && missing=1
  fi
fi
exit "$missing"
