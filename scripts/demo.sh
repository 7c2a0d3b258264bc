#!/usr/bin/env bash
# Builds calico-rs and runs calicoctl and calico-ipam against the embedded local store:
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

cargo build --release -p calicoctl -p calico-cni
calicoctl=target/release/calicoctl
ipam=target/release/calico-ipam
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

# Two pods' addresses from calico-ipam, run as a container runtime runs it.
conf='{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","nodename":"node-1",
       "log_file_path":"'"$PWD"'/target/demo/cni.log","datastore_path":"'"$DATASTORE_PATH"'",
       "ipam":{"type":"calico-ipam"}}'
for pod in web-1 web-2; do
  echo "$conf" | CNI_COMMAND=ADD CNI_CONTAINERID="demo-$pod" CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 \
    CNI_ARGS="K8S_POD_NAMESPACE=web;K8S_POD_NAME=$pod" $ipam
done
$calicoctl ipam show --show-blocks
for pod in web-1 web-2; do
  echo "$conf" | CNI_COMMAND=DEL CNI_CONTAINERID="demo-$pod" CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 $ipam
done
