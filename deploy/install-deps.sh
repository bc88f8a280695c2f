#!/usr/bin/env bash
# Installs what building and testing Spillway needs, from Debian 12 packages only.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib/steps.sh

PACKAGES=(
  build-essential cmake ccache pkg-config git openssl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libboost1.81-dev libboost-json1.81-dev libsqlite3-dev libpq-dev libspdlog-dev libssl-dev
  libyaml-cpp-dev libgtest-dev libgmock-dev libgoogle-perftools-dev libnghttp2-dev
  curl prometheus
  # The store's tests run against PostgreSQL too: each starts a server of its own from these
  # binaries (tests/support/postgres_server.h), skipped where they are missing.
  postgresql-15
  # tests/deploy/deploy_test.py: PyYAML reads the Kubernetes manifests, systemd-analyze and
  # systemd-sysusers check the units (a container image may lack systemd).
  python3-yaml systemd
)
# Node.js runs the official-SDK test; a machine that already has node and npm (from any
# source) keeps them, since Debian's npm package conflicts with other installs.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  step "installing ${missing[*]}" install.log \
    bash -c "$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends ${missing[*]}"
fi
