#!/usr/bin/env bash
# Builds calico-rs and runs calicoctl, calico-ipam and the calico CNI plugin against
# the embedded local store: applies one resource of every kind, lists them as Calico
# users see them, then (as root) wires two pods in network namespaces and pings
# between them. The pods live in namespaces this script makes and removes; the
# machine's own interfaces and routes are not touched.
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
       "log_file_path":"'"$PWD"'/target/demo/cni.log","ipam_lock_file":"'"$PWD"'/target/demo/ipam.lock","datastore_path":"'"$DATASTORE_PATH"'",
       "ipam":{"type":"calico-ipam"}}'
for pod in web-1 web-2; do
  echo "$conf" | CNI_COMMAND=ADD CNI_CONTAINERID="demo-$pod" CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 \
    CNI_ARGS="K8S_POD_NAMESPACE=web;K8S_POD_NAME=$pod" $ipam
done
$calicoctl ipam show --show-blocks
for pod in web-1 web-2; do
  echo "$conf" | CNI_COMMAND=DEL CNI_CONTAINERID="demo-$pod" CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 $ipam
done

set +x
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "== skipping the pod demo: it needs root and iproute2 (network namespaces)"
  exit 0
fi

# Two pods wired by the calico plugin. The "host" is a namespace too, with an
# uplink carrying its default route (proxy ARP answers for 169.254.1.1 only
# when the host routes it elsewhere, as on a real host).
calico=target/release/calico
tag="demo$$"
cleanup() {
  for n in host pod1 pod2 world; do ip netns del "$tag-$n" 2>/dev/null || true; done
}
trap cleanup EXIT
for n in host pod1 pod2 world; do ip netns add "$tag-$n"; done
inhost() { ip netns exec "$tag-host" "$@"; }
inhost sh -c "echo 1 > /proc/sys/net/ipv4/ip_forward"
inhost ip link add up0 type veth peer name up1 netns "$tag-world"
inhost ip addr add 192.0.2.1/24 dev up0
inhost ip link set up0 up
inhost ip route add default dev up0
conf='{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","nodename":"node-1",
       "log_file_path":"'"$PWD"'/target/demo/cni.log","ipam_lock_file":"'"$PWD"'/target/demo/ipam.lock","datastore_path":"'"$DATASTORE_PATH"'",
       "ipam":{"type":"calico-ipam"}}'
cni() { # COMMAND POD
  echo "$conf" | inhost env CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" CNI_NETNS="/run/netns/$tag-$2" \
    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni CNI_ARGS="K8S_POD_NAMESPACE=web;K8S_POD_NAME=$2" $calico
}
set -x
cni ADD pod1
cni ADD pod2
$calicoctl get workloadendpoints -n web -o wide
ip netns exec "$tag-pod1" ip route
inhost ip route
pod2ip=$(ip netns exec "$tag-pod2" ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
if command -v ping >/dev/null; then ip netns exec "$tag-pod1" ping -c 2 "$pod2ip"; fi
cni DEL pod1
cni DEL pod2
$calicoctl ipam show
