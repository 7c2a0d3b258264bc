#!/usr/bin/env bash
# Builds calico-rs and runs calicoctl against the embedded local store:
# applies one resource of every kind, then lists them as Calico users see them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
  else
    echo "calico-rs needs protoc to build: install protobuf-compiler (e.g. sudo apt-get install protobuf-compiler)" >&2
    exit 1
  fi
fi

cargo build --release -p calicoctl
calicoctl=target/release/calicoctl
export DATASTORE_TYPE=local
export DATASTORE_PATH="${DATASTORE_PATH:-$PWD/target/demo/datastore.db}"
echo "== embedded store: $DATASTORE_PATH"

set -x
$calicoctl apply -f tests/fixtures/all-kinds.yaml
$calicoctl get ippools -o wide
$calicoctl get bgppeers
$calicoctl get workloadendpoints -A
$calicoctl get globalnetworkpolicy deny-icmp -o yaml
$calicoctl version
