#!/usr/bin/env bash
# calico-rs quickstart on one machine, on the embedded local store (Debian 12, as root):
# installs what it needs, builds, installs the CNI plugins, starts calico-node,
# runs two podman containers on the Calico network and shows them talking.
#
#   bash scripts/quickstart.sh          # set up and run (again: re-uses what is there)
#   bash scripts/quickstart.sh --down   # stop and remove everything it made
#
# Everything lives under $QS (default /var/lib/calico-rs-quickstart): the
# datastore file, the plugins, the conflist, podman's private storage. On the
# host it adds what calico-node adds (blackhole and pod routes, cali* veths,
# the nftables tables `inet calico` and `inet calico-policy`, IPv4 and IPv6
# forwarding on) and --down removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
QS=${QS:-/var/lib/calico-rs-quickstart}
POOL=${POOL:-10.244.0.0/16}
NODE=$(hostname | tr 'A-Z_' 'a-z-')
export CONTAINERS_CONF=$QS/containers.conf

podman_() { podman --root "$QS/podman/root" --runroot "$QS/podman/runroot" "$@"; }

down() {
  echo "== tearing down"
  if [ -d "$QS" ]; then
    podman_ rm -f -t 0 qs-web qs-client >/dev/null 2>&1 || true
    if [ -f "$QS/calico-node.pid" ]; then kill "$(cat "$QS/calico-node.pid")" 2>/dev/null || true; fi
    sleep 1
    # calico-node leaves the dataplane when it stops (by design); remove it.
    nft delete table inet calico 2>/dev/null || true
    nft delete table inet calico-policy 2>/dev/null || true
    ip route show proto 80 | while read -r r; do ip route del $r proto 80 2>/dev/null || true; done
    for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^cali' || true); do ip link del "$l" || true; done
    ip link del vxlan.calico 2>/dev/null || true
    if [ -f "$QS/ip_forward.orig" ]; then cat "$QS/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward; fi
    if [ -f "$QS/ip6_forward.orig" ]; then cat "$QS/ip6_forward.orig" > /proc/sys/net/ipv6/conf/all/forwarding; fi
    if [ -f "$QS/made-var-lib-cni" ]; then rm -rf /var/lib/cni; fi
    # podman's overlay storage may stay mounted on itself; deepest first.
    awk -v d="$QS/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" || true; done
    rm -rf "$QS"
  fi
  echo "== done: nothing of the quickstart is left"
}

if [ "${1:-}" = "--down" ]; then down; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "the quickstart needs root (network namespaces, routes, podman)" >&2; exit 1; fi

echo "== installing packages (Debian)"
need=()
for p in build-essential protobuf-compiler podman runc busybox-static containernetworking-plugins iproute2 nftables iptables iputils-ping; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null; then
  # Debian's rustc is too old for this workspace (Rust 1.95): use rustup.
  echo "== installing Rust with rustup"
  command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  . "$HOME/.cargo/env"
fi

echo "== building (release)"
cargo build --release -q -p calico-node -p calicoctl -p calico-cni
BIN=$PWD/target/x86_64-unknown-linux-gnu/release
mkdir -p "$QS"/{bin,net.d,state,podman,rootfs/bin,rootfs/www}
[ -f "$QS/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward > "$QS/ip_forward.orig"
# calico-node turns IPv6 forwarding on too (Felix's ipv6Support).
if [ -f /proc/sys/net/ipv6/conf/all/forwarding ] && [ ! -f "$QS/ip6_forward.orig" ]; then
  cat /proc/sys/net/ipv6/conf/all/forwarding > "$QS/ip6_forward.orig"
fi
# podman's CNI library keeps a cache in /var/lib/cni: remove it on --down if we made it.
[ -e /var/lib/cni ] || [ -f "$QS/ip_forward.orig.done" ] || touch "$QS/made-var-lib-cni"
touch "$QS/ip_forward.orig.done"
export DATASTORE_TYPE=local DATASTORE_PATH=$QS/datastore.db

echo "== installing the CNI plugins into $QS/bin and $QS/net.d"
NODENAME=$NODE CNI_BIN_DIR=$QS/bin CNI_NET_DIR=$QS/net.d CNI_MTU=1500 \
  CNI_NETWORK_CONFIG='{"name":"calico","cniVersion":"1.0.0","plugins":[{"type":"calico","nodename":"__KUBERNETES_NODE_NAME__","mtu":__CNI_MTU__,"datastore_type":"__DATASTORE_TYPE__","datastore_path":"__DATASTORE_PATH__","ipam_lock_file":"'"$QS"'/ipam.lock","ipam_socket":"'"$QS"'/ipam.sock","log_file_path":"'"$QS"'/cni.log","ipam":{"type":"calico-ipam"}},{"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]}' \
  "$BIN/calico-node" install-cni

echo "== starting calico-node (local store $DATASTORE_PATH)"
if ! { [ -f "$QS/calico-node.pid" ] && kill -0 "$(cat "$QS/calico-node.pid")" 2>/dev/null; }; then
  NODENAME=$NODE CALICO_STATE_DIR=$QS/state CALICO_IPAM_SOCKET=$QS/ipam.sock \
    CALICO_NETWORKING_BACKEND=none CALICO_IPV4POOL_CIDR=$POOL \
    FELIX_HEALTHENABLED=true FELIX_HEALTHPORT=9099 \
    nohup "$BIN/calico-node" > "$QS/calico-node.log" 2>&1 &
  echo $! > "$QS/calico-node.pid"
fi
for _ in $(seq 1 100); do CALICO_STATE_DIR=$QS/state "$BIN/calico-node" -felix-ready >/dev/null 2>&1 && break; sleep 0.2; done
CALICO_STATE_DIR=$QS/state "$BIN/calico-node" -felix-ready

echo "== two containers on the calico network (podman, CNI backend)"
[ -x "$QS/rootfs/bin/busybox" ] || cp /bin/busybox "$QS/rootfs/bin/busybox"
for t in sh ip ping httpd wget sleep cat; do ln -sf busybox "$QS/rootfs/bin/$t"; done
echo "hello from a calico-rs pod" > "$QS/rootfs/www/index.html"
cat > "$CONTAINERS_CONF" <<EOF
[network]
network_backend = "cni"
cni_plugin_dirs = ["$QS/bin", "/usr/lib/cni"]
network_config_dir = "$QS/net.d"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
[engine.runtimes]
runc = ["/usr/sbin/runc"]
EOF
run() {
  podman_ container exists "$1" || podman_ run -d --name "$1" --network calico \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --rootfs "$QS/rootfs" httpd -f -p 80 -h /www >/dev/null
}
run qs-web
run qs-client
WEB=$(podman_ inspect -f '{{.NetworkSettings.Networks.calico.IPAddress}}' qs-web)
set -x
"$BIN/calicoctl" get workloadendpoints -o wide
"$BIN/calicoctl" ipam show --show-blocks
ip route | grep -E 'cali|blackhole' || true
podman_ exec qs-client ping -c 2 "$WEB"
podman_ exec qs-client wget -qO- "http://$WEB/"
set +x
echo "== running. Stop and remove everything: bash scripts/quickstart.sh --down"
