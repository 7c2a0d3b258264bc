//! One agent facing a big cluster: the scenario `benches/scale.rs` times
//! and `tests/scale.rs` runs small for correctness.
//!
//! The agent (`calico-node`, node `me`, VXLAN) runs in its own namespace
//! on the local store or on an etcd in that namespace. The store holds
//! `nodes` other nodes, each with the blocks its endpoints need, then
//! `endpoints` workload endpoints spread over them (label `app: g<k>`,
//! namespaces `ns<j>` with `kns.` profiles), `policies`
//! GlobalNetworkPolicies selecting this node's endpoints, policy `k`
//! allowing ingress from `app == "g<k>"` and egress to the network sets
//! labelled `netset == "n<k>"`, and `netsets` GlobalNetworkSets. Then,
//! with the agent ready:
//! 1. start-up to ready, and the same final state loaded by hand in a
//!    fresh namespace (`nft -f` of the agent's ruleset, `ip -batch` and
//!    `bridge -batch` of its routes, neighbours and forwarding entries);
//! 2. label changes of endpoints elsewhere, one at a time, each until the
//!    endpoint's address is in its new selector's set in the kernel;
//! 3. endpoint adds elsewhere, one at a time, each until its address is in
//!    its set in the kernel (the latency of each);
//! 4. a burst of adds written at once, until all are in the kernel;
//!
//! with the agent's CPU time (all its threads, from `schedstat`), the bytes
//! it read from the datastore (its `calico_rs_datastore_read_bytes`) and
//! its peak RSS.

#![allow(dead_code)] // the bench and the test each use part of it
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed run

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::{Kind, ResourceKey};
use calico_datastore::{Op, Store};
use calico_testutil::{EtcdServer, TestNetns, free_port, workspace_bin};
use ipnet::{IpNet, Ipv4Net};
use serde_json::json;

/// Where the datastore is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite store.
    Local,
    /// etcd v3.
    Etcd,
}

/// The size of one run.
#[derive(Debug, Clone)]
pub struct Params {
    pub store: StoreKind,
    pub endpoints: usize,
    pub nodes: usize,
    pub policies: usize,
    pub netsets: usize,
    /// Label changes measured.
    pub changes: usize,
    /// Single adds measured.
    pub adds: usize,
    /// Adds in the burst.
    pub burst: usize,
    /// Endpoints on this node.
    pub local: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub startup: Duration,
    pub reference: Duration,
    pub rss_kib: u64,
    /// RSS at the end (peak is `rss_kib`).
    pub rss_end_kib: u64,
    pub cpu_per_change: Duration,
    pub cpu_per_add: Duration,
    pub add_p50: Duration,
    pub add_p99: Duration,
    pub burst: Duration,
    pub bytes_per_change: f64,
    pub bytes_per_add: f64,
    pub routes: usize,
}

const POOL: &str = "10.0.0.0/8";
const BLOCK: u8 = 26;
const NAMESPACES: usize = 100;
/// The label groups endpoints are spread over (policy k selects group k).
pub fn groups(p: &Params) -> usize {
    p.policies.max(1)
}

fn block(i: usize) -> Ipv4Net {
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i as u32) * 64;
    Ipv4Net::new(Ipv4Addr::from(base), BLOCK).unwrap_or_default()
}

fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 1, 0)) + i as u32)
}

fn mac(i: usize) -> String {
    let b = (i as u32).to_be_bytes();
    format!("66:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// Blocks each node holds (enough for its share of every endpoint the
/// run writes, adds included).
fn blocks_per_node(p: &Params) -> usize {
    let total = p.endpoints + p.adds + p.burst + p.changes;
    total.div_ceil(p.nodes).div_ceil(60).max(1)
}

/// Endpoint `i`: its node, and its address (the `i / nodes`-th address of
/// that node's blocks, skipping each block's first and last few).
fn placement(p: &Params, i: usize) -> (usize, Ipv4Addr) {
    let node = i % p.nodes;
    let nth = i / p.nodes;
    let b = block(node * blocks_per_node(p) + nth / 60);
    let addr = Ipv4Addr::from(u32::from(b.network()) + 2 + (nth % 60) as u32);
    (node, addr)
}

fn key(kind: Kind, ns: Option<&str>, name: &str) -> String {
    calico_datastore::keys::resource_key(&ResourceKey {
        kind,
        namespace: ns.map(str::to_string),
        name: name.to_string(),
    })
}

fn doc(
    kind: &str,
    ns: Option<&str>,
    name: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
) -> Vec<u8> {
    let mut meta = json!({"name": name, "labels": labels});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec})
        .to_string()
        .into_bytes()
}

/// Endpoint `i` elsewhere with label group `g`: its key, value, address.
pub fn endpoint(p: &Params, i: usize, g: usize) -> (String, Vec<u8>, Ipv4Addr) {
    let (node, addr) = placement(p, i);
    let ns = format!("ns{}", i % NAMESPACES);
    let name = format!("node--{node}-k8s-p{i}-eth0");
    let spec = json!({"node": format!("node-{node}"), "orchestrator": "k8s", "pod": format!("p{i}"),
        "endpoint": "eth0", "interfaceName": format!("cali{i:011x}"),
        "ipNetworks": [format!("{addr}/32")], "profiles": [format!("kns.{ns}")]});
    let labels = json!({"app": format!("g{g}")});
    (
        key(Kind::WorkloadEndpoint, Some(&ns), &name),
        doc("WorkloadEndpoint", Some(&ns), &name, labels, spec),
        addr,
    )
}

/// The nft set of selector `app == "g<g>"` (IPv4).
pub fn group_set(g: usize) -> String {
    let sel = calico_api::selector::Selector::parse(&format!("app == 'g{g}'")).unwrap();
    format!("s4-{}", calico_policy::nft::short_hash(&sel.to_string()))
}

/// Writes `ops` in transactions of `chunk`.
fn write_all(store: &dyn Store, ops: Vec<Op>, chunk: usize) {
    for c in ops.chunks(chunk) {
        store.txn(&[], c).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Everything but this node's own resources.
fn populate(p: &Params, store: &dyn Store) {
    let chunk = match p.store {
        StoreKind::Local => 2000,
        StoreKind::Etcd => 120,
    };
    let mut ops = Vec::new();
    let put = |ops: &mut Vec<Op>, key: String, value: Vec<u8>| ops.push(Op::Put { key, value });
    put(
        &mut ops,
        key(Kind::IPPool, None, "bench"),
        doc(
            "IPPool",
            None,
            "bench",
            json!({}),
            json!({"cidr": POOL, "blockSize": BLOCK, "vxlanMode": "Always", "ipipMode": "Never",
                   "natOutgoing": true, "nodeSelector": "all()"}),
        ),
    );
    let per = blocks_per_node(p);
    for n in 0..p.nodes {
        let name = format!("node-{n}");
        let spec = json!({"bgp": {"ipv4Address": format!("{}/16", node_addr(n))},
            "ipv4VXLANTunnelAddr": block(n * per).network().to_string(), "vxlanTunnelMACAddr": mac(n)});
        put(
            &mut ops,
            key(Kind::Node, None, &name),
            doc("Node", None, &name, json!({}), spec),
        );
        for b in 0..per {
            let net = IpNet::V4(block(n * per + b));
            let blk = calico_ipam::Block::new(net, Some(&name));
            put(
                &mut ops,
                calico_ipam::keys::block(&net),
                serde_json::to_vec(&blk).unwrap(),
            );
            put(
                &mut ops,
                calico_ipam::keys::affinity(&name, &net),
                br#"{"state":"confirmed"}"#.to_vec(),
            );
        }
    }
    for j in 0..NAMESPACES {
        let name = format!("kns.ns{j}");
        let spec = json!({"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}],
            "labelsToApply": {"pcns.projectcalico.org/name": format!("ns{j}")}});
        put(
            &mut ops,
            key(Kind::Profile, None, &name),
            doc("Profile", None, &name, json!({}), spec),
        );
    }
    for k in 0..p.policies {
        let name = format!("gnp-{k}");
        let spec = json!({"order": k, "selector": "role == 'local'",
            "ingress": [{"action": "Allow", "protocol": "TCP",
                "source": {"selector": format!("app == 'g{k}'")}, "destination": {"ports": [80]}}],
            "egress": [{"action": "Allow", "destination": {"selector": format!("netset == 'n{}'", k % p.netsets.max(1))}}]});
        put(
            &mut ops,
            key(Kind::GlobalNetworkPolicy, None, &name),
            doc("GlobalNetworkPolicy", None, &name, json!({}), spec),
        );
    }
    for k in 0..p.netsets {
        let name = format!("set-{k}");
        let net = Ipv4Net::new(
            Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + (k as u32) * 64),
            26,
        )
        .unwrap();
        let spec = json!({"nets": [net.to_string()]});
        put(
            &mut ops,
            key(Kind::GlobalNetworkSet, None, &name),
            doc(
                "GlobalNetworkSet",
                None,
                &name,
                json!({"netset": format!("n{k}")}),
                spec,
            ),
        );
    }
    write_all(store, std::mem::take(&mut ops), chunk);
    for i in 0..p.endpoints {
        let (k, v, _) = endpoint(p, i, i % groups(p));
        ops.push(Op::Put { key: k, value: v });
        if ops.len() >= chunk * 10 {
            write_all(store, std::mem::take(&mut ops), chunk);
        }
    }
    // This node's endpoints, which every policy selects.
    for l in 0..p.local {
        let name = format!("me-k8s-l{l}-eth0");
        let spec = json!({"node": "me", "orchestrator": "k8s", "pod": format!("l{l}"),
            "endpoint": "eth0", "interfaceName": format!("calil{l:010x}"),
            "ipNetworks": [format!("10.255.0.{}/32", l + 1)], "profiles": ["kns.ns0"]});
        ops.push(Op::Put {
            key: key(Kind::WorkloadEndpoint, Some("ns0"), &name),
            value: doc(
                "WorkloadEndpoint",
                Some("ns0"),
                &name,
                json!({"role": "local"}),
                spec,
            ),
        });
    }
    write_all(store, ops, chunk);
}

/// The agent's CPU time so far, all threads (ns precision).
fn cpu(pid: u32) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The agent's `calico_rs_datastore_read_bytes`.
fn bytes_read(port: u16) -> f64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return f64::NAN;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find(|l| l.starts_with("calico_rs_datastore_read_bytes "))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Whether all `addrs` are elements of `set` in the agent's table
/// (`nft list set` reads only that set; `nft get element` would fetch
/// every set of the table first).
fn in_set(ns: &TestNetns, set: &str, addrs: &[Ipv4Addr]) -> bool {
    let Ok(out) = ns.try_exec(&["nft", "list", "set", "inet", "calico-policy", set]) else {
        return false;
    };
    let Some(start) = out.find("elements = {") else {
        return addrs.is_empty();
    };
    let have: std::collections::HashSet<&str> = out[start + 12..]
        .split(|c: char| c == ',' || c == '}' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    addrs.iter().all(|a| have.contains(a.to_string().as_str()))
}

fn wait_in_set(ns: &TestNetns, set: &str, addrs: &[Ipv4Addr], limit: Duration) -> Duration {
    let t = Instant::now();
    while !in_set(ns, set, addrs) {
        assert!(
            t.elapsed() < limit,
            "{} address(es) never reached set {set}",
            addrs.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent_ns() -> TestNetns {
    let ns = TestNetns::new("sc");
    ns.exec(&[
        "sh",
        "-c",
        "ip link set lo up && ip link add up0 type veth peer name up1 && \
         ip addr add 172.16.0.1/16 dev up0 && ip link set up0 up && ip link set up1 up",
    ]);
    ns
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Loads `ruleset` and the routes by hand in a fresh namespace; the time.
fn reference(p: &Params, ruleset: &str) -> Duration {
    let ns = agent_ns();
    ns.exec(&[
        "sh",
        "-c",
        "ip link add vxlan.calico type vxlan id 4096 local 172.16.0.1 dstport 4789 nolearning && \
         ip link set vxlan.calico up",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ruleset.nft");
    std::fs::write(&rules, ruleset).unwrap();
    let per = blocks_per_node(p);
    let mut batch = String::new();
    let mut fdb = String::new();
    for n in 0..p.nodes {
        let tunnel = block(n * per).network();
        batch.push_str(&format!(
            "neigh replace {tunnel} lladdr {} dev vxlan.calico nud permanent\n",
            mac(n)
        ));
        fdb.push_str(&format!(
            "fdb replace {} dev vxlan.calico dst {} self permanent\n",
            mac(n),
            node_addr(n)
        ));
        for b in 0..per {
            batch.push_str(&format!(
                "route replace {} via {tunnel} dev vxlan.calico onlink proto 80\n",
                block(n * per + b)
            ));
        }
    }
    let start = Instant::now();
    ns.exec(&["nft", "-f", rules.to_str().unwrap()]);
    for (tool, text) in [("ip", &batch), ("bridge", &fdb)] {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), tool, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(text.as_bytes());
        }
        assert!(
            child.wait().is_ok_and(|s| s.success()),
            "{tool} -batch failed"
        );
    }
    start.elapsed()
}

/// Runs the scenario; `reference` also times the hand-made load.
pub fn run(p: &Params, with_reference: bool) -> Results {
    let ns = agent_ns();
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("ds.db");
    let etcd = (p.store == StoreKind::Etcd).then(|| EtcdServer::start_in(ns.name()));
    let netns = calico_dataplane::NetNs::open(ns.path()).unwrap();
    // Everything that talks to the store runs inside the agent's namespace
    // (etcd listens on its loopback).
    let ns_run = |f: &(dyn Fn() + Sync)| netns.run(f).unwrap();
    let store: Arc<dyn Store> = match &etcd {
        None => Arc::new(calico_datastore::local::LocalStore::open(&db).unwrap()),
        Some(e) => {
            let endpoint = e.endpoint();
            netns
                .run(move || {
                    let s = calico_datastore::etcd::EtcdStore::connect(
                        &[endpoint],
                        &calico_datastore::etcd::EtcdTls::default(),
                        None,
                    )
                    .unwrap();
                    Arc::new(s) as Arc<dyn Store>
                })
                .unwrap()
        }
    };
    ns_run(&|| populate(p, store.as_ref()));
    // SCALE_AGENT_LOG=<file>: the agent's log (info) goes there.
    let log = std::env::var_os("SCALE_AGENT_LOG");
    let health = free_port();
    let metrics = free_port();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name()])
        .arg(workspace_bin("calico-node"))
        .env("NODENAME", "me")
        .env("CALICO_STATE_DIR", dir.path().join("state"))
        .env("CALICO_IPAM_SOCKET", dir.path().join("ipam.sock"))
        .env("CALICO_NETWORKING_BACKEND", "vxlan")
        .env("IP", "172.16.0.1/16")
        .env("FELIX_HEALTHENABLED", "true")
        .env("FELIX_HEALTHPORT", health.to_string())
        .env("FELIX_PROMETHEUSMETRICSENABLED", "true")
        .env("FELIX_PROMETHEUSMETRICSPORT", metrics.to_string())
        .env(
            "FELIX_LOGSEVERITYSCREEN",
            if log.is_some() { "Info" } else { "Error" },
        )
        // No periodic read-back inside the measurements.
        .env("FELIX_ROUTEREFRESHINTERVAL", "3600")
        .stderr(match &log {
            Some(f) => Stdio::from(std::fs::File::create(f).unwrap()),
            None => Stdio::null(),
        });
    match &etcd {
        None => cmd
            .env("DATASTORE_TYPE", "local")
            .env("DATASTORE_PATH", &db),
        Some(e) => cmd
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", e.endpoint()),
    };
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    let agent = Agent(child);
    let pid = agent_pid(&agent.0);
    loop {
        let ready = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(workspace_bin("calico-node"))
            .arg("-felix-ready")
            .env("CALICO_STATE_DIR", dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "calico-node never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup = start.elapsed();
    let mut r = Results {
        startup,
        ..Results::default()
    };
    // Everything is in the kernel: a sample of endpoints in their sets,
    // every block's route.
    let g = groups(p);
    for i in [0, p.endpoints / 2, p.endpoints.saturating_sub(1)] {
        let (_, _, addr) = endpoint(p, i, i % g);
        wait_in_set(&ns, &group_set(i % g), &[addr], Duration::from_secs(5));
    }
    let routes = ns.exec(&[
        "sh",
        "-c",
        "ip route show proto 80 | grep -c vxlan.calico || true",
    ]);
    r.routes = routes.trim().parse().unwrap_or(0);
    assert_eq!(
        r.routes,
        p.nodes * blocks_per_node(p),
        "not every block's route is there"
    );
    if with_reference {
        let ruleset = ns.exec(&["nft", "list", "ruleset"]);
        r.reference = reference(p, &ruleset);
    }
    let limit = Duration::from_secs(120);
    // 2. Label changes elsewhere.
    let put = |k: String, v: Vec<u8>| {
        let s = store.clone();
        ns_run(&move || {
            s.txn(
                &[],
                &[Op::Put {
                    key: k.clone(),
                    value: v.clone(),
                }],
            )
            .unwrap();
        });
    };
    let bytes = || netns.run(|| bytes_read(metrics)).unwrap_or(f64::NAN);
    let bytes0 = bytes();
    let cpu0 = cpu(pid);
    for c in 0..p.changes {
        let i = (c * 7919) % p.endpoints.max(1);
        let to = (i % g + 1 + c) % g;
        let (k, v, addr) = endpoint(p, i, to);
        put(k, v);
        wait_in_set(&ns, &group_set(to), &[addr], limit);
    }
    let cpu1 = cpu(pid);
    let bytes1 = bytes();
    r.cpu_per_change = (cpu1 - cpu0) / p.changes.max(1) as u32;
    r.bytes_per_change = (bytes1 - bytes0) / p.changes.max(1) as f64;
    // 3. Adds elsewhere, one at a time.
    let mut lat = Vec::new();
    for a in 0..p.adds {
        let i = p.endpoints + a;
        let (k, v, addr) = endpoint(p, i, i % g);
        let t = Instant::now();
        put(k, v);
        wait_in_set(&ns, &group_set(i % g), &[addr], limit);
        lat.push(t.elapsed());
    }
    let cpu2 = cpu(pid);
    let bytes2 = bytes();
    r.cpu_per_add = (cpu2 - cpu1) / p.adds.max(1) as u32;
    r.bytes_per_add = (bytes2 - bytes1) / p.adds.max(1) as f64;
    r.add_p50 = percentile(&mut lat, 0.5);
    r.add_p99 = percentile(&mut lat, 0.99);
    // 4. A burst of adds, all in one group's set.
    let first = p.endpoints + p.adds;
    let mut ops = Vec::new();
    let mut addrs = Vec::new();
    for i in first..first + p.burst {
        let (k, v, addr) = endpoint(p, i, 0);
        ops.push(Op::Put { key: k, value: v });
        addrs.push(addr);
    }
    let t = Instant::now();
    {
        let s = store.clone();
        ns_run(&move || {
            for c in ops.chunks(100) {
                s.txn(&[], c).unwrap();
            }
        });
    }
    let set = group_set(0);
    for chunk in addrs.chunks(500) {
        wait_in_set(&ns, &set, chunk, Duration::from_secs(900));
    }
    r.burst = t.elapsed();
    r.rss_kib = status_kib(pid, "VmHWM:");
    r.rss_end_kib = status_kib(pid, "VmRSS:");
    drop(agent);
    drop(etcd);
    r
}

/// The pid of calico-node itself (the child is `ip netns exec`, which
/// execs it: same pid).
fn agent_pid(c: &Child) -> u32 {
    c.id()
}

/// Whether this machine can run it.
pub fn runnable() -> bool {
    calico_testutil::is_root()
        && workspace_bin("calico-node").exists()
        && Path::new("/usr/sbin/nft").exists()
}
