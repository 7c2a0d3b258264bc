//! How fast calico-node converges a node's routing on a big cluster, against
//! `ip -batch` installing the same kernel state in the same run.
//!
//! `sudo cargo bench -p calico-node --bench converge` (root: namespaces).
//!
//! For N = 1,000 and 10,000 remote nodes, each with one VXLAN block (nodes
//! and blocks written to a local store first, not timed): the time from
//! starting `calico-node` until it reports ready (its first full pass has
//! programmed N routes, N neighbour and N forwarding entries), its peak RSS
//! (VmHWM), and the time `ip -batch` takes for the same N routes,
//! neighbours and forwarding entries in a fresh namespace. Prints the ratio
//! (goal ≤ 2×) and the RSS (goal < 64 MiB at 10,000).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_datastore::{Client, Op};
use calico_testutil::{TestNetns, free_port, is_root, workspace_bin};
use ipnet::{IpNet, Ipv4Net};

fn block(i: usize) -> Ipv4Net {
    // 10.0.0.0/8 in /26 blocks: block i starts at i * 64.
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i as u32) * 64;
    Ipv4Net::new(Ipv4Addr::from(base), 26).unwrap_or_default()
}

fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 10)) + i as u32)
}

fn mac(i: usize) -> String {
    let b = (i as u32).to_be_bytes();
    format!("66:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

fn populate(db: &std::path::Path, n: usize) {
    let store = calico_datastore::local::LocalStore::open(db).unwrap_or_else(|e| panic!("{e}"));
    let client = Client::new(std::sync::Arc::new(store));
    let pool = calico_api::decode_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "bench"},
        "spec": {"cidr": "10.0.0.0/8", "blockSize": 26, "vxlanMode": "Always"}}))
    .unwrap_or_else(|e| panic!("{e}"));
    client.create(pool).unwrap_or_else(|e| panic!("{e}"));
    let store = client.store().clone();
    let mut ops = Vec::new();
    for i in 0..n {
        let name = format!("node-{i}");
        let b = block(i);
        let tunnel = b.addr();
        let node = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": name},
            "spec": {"bgp": {"ipv4Address": format!("{}/16", node_addr(i))},
                     "ipv4VXLANTunnelAddr": tunnel.to_string(), "vxlanTunnelMACAddr": mac(i)}});
        ops.push(Op::Put {
            key: format!("/calico/resources/v3/projectcalico.org/nodes/{name}"),
            value: node.to_string().into_bytes(),
        });
        let blk = calico_ipam::Block::new(IpNet::V4(b), Some(&name));
        ops.push(Op::Put {
            key: calico_ipam::keys::block(&IpNet::V4(b)),
            value: serde_json::to_vec(&blk).unwrap_or_default(),
        });
        ops.push(Op::Put {
            key: calico_ipam::keys::affinity(&name, &IpNet::V4(b)),
            value: br#"{"state":"confirmed"}"#.to_vec(),
        });
        if ops.len() >= 600 {
            store.txn(&[], &ops).unwrap_or_else(|e| panic!("{e}"));
            ops.clear();
        }
    }
    if !ops.is_empty() {
        store.txn(&[], &ops).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn host_ns() -> TestNetns {
    let ns = TestNetns::new("bc");
    ns.exec(&[
        "sh",
        "-c",
        "ip link add up0 type veth peer name up1 && ip addr add 172.16.0.1/16 dev up0 && \
         ip link set up0 up && ip link set up1 up",
    ]);
    ns
}

/// calico-node from start to ready; (time, peak RSS in KiB).
fn calico(n: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("ds.db");
    populate(&db, n);
    let ns = host_ns();
    let port = free_port().to_string();
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(workspace_bin("calico-node"))
        .env("NODENAME", "me")
        .env("DATASTORE_TYPE", "local")
        .env("DATASTORE_PATH", &db)
        .env("CALICO_STATE_DIR", dir.path().join("state"))
        .env("CALICO_IPAM_SOCKET", dir.path().join("ipam.sock"))
        .env("CALICO_NETWORKING_BACKEND", "vxlan")
        .env("IP", "172.16.0.1/16")
        .env("FELIX_HEALTHENABLED", "true")
        .env("FELIX_HEALTHPORT", &port)
        .env("FELIX_LOGSEVERITYSCREEN", "Error")
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.id();
    loop {
        let ready = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(workspace_bin("calico-node"))
            .arg("-felix-ready")
            .env("FELIX_HEALTHPORT", &port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "calico-node never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let routes = ns.exec(&["sh", "-c", "ip route show proto 80 | grep -c vxlan.calico"]);
    assert_eq!(
        routes.trim(),
        n.to_string(),
        "not every route was programmed"
    );
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    (took, rss)
}

/// `ip -batch` for the same kernel state (device made first, not timed).
fn ip_batch(n: usize) -> Duration {
    let ns = host_ns();
    ns.exec(&[
        "sh",
        "-c",
        "ip link add vxlan.calico type vxlan id 4096 local 172.16.0.1 dstport 4789 nolearning && \
         ip link set vxlan.calico up",
    ]);
    let mut batch = String::new();
    for i in 0..n {
        let b = block(i);
        let tunnel = b.addr();
        batch.push_str(&format!(
            "neigh replace {tunnel} lladdr {} dev vxlan.calico nud permanent\n",
            mac(i)
        ));
        batch.push_str(&format!(
            "route replace {b} via {tunnel} dev vxlan.calico onlink proto 80\n"
        ));
    }
    let mut fdb = String::new();
    for i in 0..n {
        fdb.push_str(&format!(
            "fdb replace {} dev vxlan.calico dst {} self permanent\n",
            mac(i),
            node_addr(i)
        ));
    }
    let start = Instant::now();
    for (tool, text) in [("ip", &batch), ("bridge", &fdb)] {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), tool, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(text.as_bytes());
        }
        let ok = child.wait().is_ok_and(|s| s.success());
        assert!(ok, "{tool} -batch failed");
    }
    start.elapsed()
}

fn main() {
    if !is_root() || !workspace_bin("calico-node").exists() {
        eprintln!("skipping: needs root and calico-node (cargo build --release -p calico-node)");
        return;
    }
    for n in [1_000, 10_000] {
        let reference = ip_batch(n);
        let (took, rss) = calico(n);
        println!(
            "{n:>6} remote blocks: calico-node start to ready {took:?} (peak RSS {:.1} MiB), ip -batch {reference:?}: ratio {:.2} (goal <= 2)",
            rss as f64 / 1024.0,
            took.as_secs_f64() / reference.as_secs_f64()
        );
    }
}
