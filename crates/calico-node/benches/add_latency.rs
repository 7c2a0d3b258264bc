//! Pod ADD latency on a real three-node etcd cluster (see `tests/common`)
//! while the datastore churns: `cargo bench -p calico-node --bench
//! add_latency` (root: namespaces; `ADD_LATENCY_PODS` changes the count).
//!
//! A background thread keeps every agent busy: a GlobalNetworkPolicy is
//! applied and deleted, the pool's `natOutgoing` is toggled, and a pod
//! with a floating IP is added and removed, round the nodes, so Felix
//! replaces its `inet calico` table and reloads policy all the time.
//! Meanwhile 300 pods are added (round the nodes) with the `calico` plugin
//! (IPAM through calico-node's IPAM service, the endpoint written to
//! etcd), each followed in turn by the same ADD with Debian's `ptp` +
//! `host-local` plugins (`/usr/lib/cni`) on the same node, the reference:
//! a plugin pair that touches neither etcd nor calico-node. At most 20 pods
//! of each kind live at a time; the oldest is deleted (DEL, timed apart).
//!
//! Prints p50 / p99 / max and the count over 1 s for each plugin's ADD and
//! DEL and for the churn's floating-IP ADDs, and the ratio calico / ptp.
//! Goal: calico ADD p99 ≤ 300 ms, no ADD over 1 s.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use calico_testutil::{TestNetns, is_root, workspace_bin};
use common::Cluster;
use serde_json::{Value, json};

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bench}\n\
                    spec: {cidr: 10.84.0.0/16, blockSize: 26, vxlanMode: Always, natOutgoing: NAT}\n";
const POLICY: &str = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
                      metadata: {name: churn}\n\
                      spec: {selector: all(), types: [Ingress], ingress: [{action: Deny, source: {nets: [192.0.2.0/24]}}, {action: Allow}]}\n";
/// Felix programs floating IPs only when told to (its default is `Disabled`).
const FELIX: &str = "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\n\
                     metadata: {name: default}\nspec: {floatingIPs: Enabled}\n";
/// Live pods per plugin before the oldest is deleted.
const WINDOW: usize = 20;

/// What one node needs to run a plugin there, copied out of the cluster
/// so the churn thread can use it too.
#[derive(Clone)]
struct NodeInfo {
    name: String,
    netns: String,
    lock: PathBuf,
    socket: PathBuf,
}

#[derive(Clone)]
struct Env {
    nodes: Vec<NodeInfo>,
    etcd: String,
    fabric: String,
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Plugin {
    Calico,
    Ptp,
}

impl Env {
    fn conf(&self, plugin: Plugin, node: usize, extra: Value) -> Value {
        let n = &self.nodes[node];
        let mut conf = match plugin {
            Plugin::Calico => json!({"cniVersion": "1.0.0", "name": "k8s-pod-network",
                "type": "calico", "nodename": n.name, "mtu": 1450, "datastore_type": "etcdv3",
                "etcd_endpoints": self.etcd, "ipam_lock_file": n.lock, "ipam_socket": n.socket,
                "log_file_path": self.dir.join("cni.log"), "ipam": {"type": "calico-ipam"}}),
            Plugin::Ptp => json!({"cniVersion": "1.0.0", "name": "bench-ptp", "type": "ptp",
                "mtu": 1450, "ipam": {"type": "host-local",
                "ranges": [[{"subnet": format!("10.85.{node}.0/24")}]],
                "dataDir": self.dir.join(format!("host-local-{node}"))}}),
        };
        if let (Some(c), Some(e)) = (conf.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        conf
    }

    /// Runs one plugin command in node `node`'s namespace; its wall time.
    fn cni(
        &self,
        plugin: Plugin,
        cmd: &str,
        node: usize,
        id: &str,
        pod: &Path,
        extra: Value,
    ) -> Duration {
        let bin = match plugin {
            Plugin::Calico => workspace_bin("calico"),
            Plugin::Ptp => PathBuf::from("/usr/lib/cni/ptp"),
        };
        let conf = self.conf(plugin, node, extra).to_string();
        let t = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.nodes[node].netns])
            .arg(bin)
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", pod)
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_PATH",
                format!("{}:/usr/lib/cni", workspace_dir().display()),
            )
            // The reference plugins refuse arguments they do not know.
            .env(
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={id}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{cmd} {id} on node {node}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn calicoctl(&self, verb: &str, file: &Path) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.fabric])
            .arg(workspace_bin("calicoctl"))
            .args([verb, "-f"])
            .arg(file)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", &self.etcd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "calicoctl {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Where the workspace's binaries are (the `calico-ipam` plugin for `calico`).
fn workspace_dir() -> PathBuf {
    workspace_bin("calico")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Policies, NAT and floating IPs churn until `stop`; returns the
/// floating-IP pods' ADD times.
fn churn(env: &Env, stop: &AtomicBool) -> Vec<Duration> {
    let policy = env.dir.join("churn-policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let nat_on = env.dir.join("churn-nat-on.yaml");
    std::fs::write(&nat_on, POOL.replace("NAT", "true")).unwrap();
    let nat_off = env.dir.join("churn-nat-off.yaml");
    std::fs::write(&nat_off, POOL.replace("NAT", "false")).unwrap();
    let mut floating = Vec::new();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        env.calicoctl("apply", &policy);
        env.calicoctl(
            "apply",
            if round.is_multiple_of(2) {
                &nat_off
            } else {
                &nat_on
            },
        );
        let node = round % env.nodes.len();
        let pod = TestNetns::new("fip");
        let id = format!("fip-{round}");
        let extra = json!({"feature_control": {"floating_ips": true},
            "runtimeConfig": {"io.kubernetes.cri.pod-annotations":
                {"cni.projectcalico.org/floatingIPs":
                    format!("[\"172.30.{}.{}\"]", 6 + node, 1 + round % 200)}}});
        floating.push(env.cni(Plugin::Calico, "ADD", node, &id, &pod.path(), extra.clone()));
        std::thread::sleep(Duration::from_millis(100));
        env.calicoctl("delete", &policy);
        env.cni(Plugin::Calico, "DEL", node, &id, &pod.path(), extra);
        std::thread::sleep(Duration::from_millis(100));
        round += 1;
    }
    floating
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    over_1s: usize,
    n: usize,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(i).copied().unwrap_or_default()
    };
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: v.last().copied().unwrap_or_default(),
        over_1s: v.iter().filter(|d| **d > Duration::from_secs(1)).count(),
        n: v.len(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Stats) {
    println!(
        "{name:<26} {:>5} {:>9} {:>9} {:>9} {:>7}",
        s.n,
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.over_1s
    );
}

fn main() {
    if !is_root() {
        eprintln!("skipping: needs root (network namespaces)");
        return;
    }
    let pods: usize = std::env::var("ADD_LATENCY_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let c = Cluster::new(3, &format!("{}---\n{FELIX}", POOL.replace("NAT", "true")));
    let env = Env {
        nodes: c
            .nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                netns: n.ns.name().to_string(),
                lock: c.dir.path().join(format!("{}.lock", n.name)),
                socket: c.dir.path().join(format!("{}.sock", n.name)),
            })
            .collect(),
        etcd: c.etcd.endpoint(),
        fabric: c.fabric.name().to_string(),
        dir: c.dir.path().to_path_buf(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (env, stop) = (env.clone(), stop.clone());
        std::thread::spawn(move || churn(&env, &stop))
    };
    let mut add = [Vec::new(), Vec::new()];
    let mut del = [Vec::new(), Vec::new()];
    let mut live: [VecDeque<(usize, String, TestNetns)>; 2] = [VecDeque::new(), VecDeque::new()];
    let started = Instant::now();
    for i in 0..pods {
        let node = i % env.nodes.len();
        for (k, plugin) in [Plugin::Calico, Plugin::Ptp].into_iter().enumerate() {
            let pod = TestNetns::new("alat");
            let id = format!("{}-{i}", if k == 0 { "cal" } else { "ptp" });
            let took = env.cni(plugin, "ADD", node, &id, &pod.path(), json!({}));
            if took > Duration::from_secs(1) {
                eprintln!(
                    "slow {id} ADD on node {node}: {took:?} (at {:?})",
                    started.elapsed()
                );
            }
            add[k].push(took);
            live[k].push_back((node, id, pod));
            if live[k].len() > WINDOW
                && let Some((n, id, pod)) = live[k].pop_front()
            {
                del[k].push(env.cni(plugin, "DEL", n, &id, &pod.path(), json!({})));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for (k, plugin) in [Plugin::Calico, Plugin::Ptp].into_iter().enumerate() {
        while let Some((n, id, pod)) = live[k].pop_front() {
            del[k].push(env.cni(plugin, "DEL", n, &id, &pod.path(), json!({})));
        }
    }
    let floating = churner.join().unwrap();
    let rounds = floating.len();
    println!(
        "pod ADD latency, 3-node etcd cluster, {pods} ADDs per plugin in {:.0?} while policies, \
         NAT and floating IPs churn ({rounds} churn rounds); goal: calico ADD p99 <= 300 ms, none over 1 s",
        started.elapsed()
    );
    println!(
        "{:<26} {:>5} {:>9} {:>9} {:>9} {:>7}",
        "", "n", "p50 ms", "p99 ms", "max ms", ">1 s"
    );
    let [cal_add, ptp_add] = add;
    let [cal_del, ptp_del] = del;
    let (ca, pa) = (stats(cal_add), stats(ptp_add));
    row("calico ADD", &ca);
    row("ptp+host-local ADD", &pa);
    row("calico floating-IP ADD", &stats(floating));
    row("calico DEL", &stats(cal_del));
    row("ptp+host-local DEL", &stats(ptp_del));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "calico / ptp+host-local ADD: p50 {:.2}x, p99 {:.2}x",
        ratio(ca.p50, pa.p50),
        ratio(ca.p99, pa.p99)
    );
    drop(c);
}
