//! The `calico` plugin (with calico-ipam, local store) against Debian's
//! `ptp` + `host-local`, side by side in one run.
//!
//! `sudo cargo bench -p calico-cni --bench plugin` (root: it makes network
//! namespaces; needs containernetworking-plugins for /usr/lib/cni).
//!
//! Both do the same job for a pod: a veth pair with an address and routes
//! in the pod, a host route, an address from an IPAM store; each ADD and
//! DEL is a process started as a runtime starts it, from a thread inside a
//! "host" namespace made for the run (the machine's own is not touched).
//! Rounds alternate between the two so drift hits both alike.
//!
//! Prints the mean and p50 of one ADD+DEL cycle of each and the ratio
//! calico / (ptp + host-local) (goal: at most 0.5); then the latency of 50
//! concurrent calico ADDs on one node (p50, p99), on the local store and on
//! etcd (a real etcd started inside the host namespace).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_testutil::{TestNetns, is_root, workspace_bin};
use serde_json::json;

const PTP: &str = "/usr/lib/cni/ptp";
const ROUNDS: usize = 10;
const PER_ROUND: usize = 20;

fn exec(bin: &Path, command: &str, container: &str, netns: &Path, conf: &str) -> bool {
    let Ok(mut child) = Command::new(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={container}"),
        )
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(conf.as_bytes());
    }
    let out = child.wait_with_output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "{} {command} failed: {}",
                bin.display(),
                String::from_utf8_lossy(&o.stdout)
            );
            false
        }
        Err(_) => false,
    }
}

fn cycles(bin: &Path, conf: &str, pod: &Path, tag: &str, n: usize, out: &mut Vec<Duration>) {
    for i in 0..n {
        let c = format!("{tag}{i}");
        let t = Instant::now();
        assert!(exec(bin, "ADD", &c, pod, conf), "ADD failed");
        assert!(exec(bin, "DEL", &c, pod, conf), "DEL failed");
        out.push(t.elapsed());
    }
}

/// 50 pods ADDed at once, then DELeted at once; the ADD latencies, sorted.
fn burst(calico: &Path, conf: &str, host_ns: &NetNs, tag: &str) -> Vec<Duration> {
    let pods: Vec<TestNetns> = (0..50).map(|_| TestNetns::new("bb")).collect();
    let mut took = host_ns
        .run(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = pods
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let path = p.path();
                        s.spawn(move || {
                            let t = Instant::now();
                            assert!(
                                exec(calico, "ADD", &format!("{tag}{i}"), &path, conf),
                                "ADD failed"
                            );
                            t.elapsed()
                        })
                    })
                    .collect();
                let took: Vec<Duration> =
                    handles.into_iter().filter_map(|h| h.join().ok()).collect();
                for (i, p) in pods.iter().enumerate() {
                    let path = p.path();
                    s.spawn(move || exec(calico, "DEL", &format!("{tag}{i}"), &path, conf));
                }
                took
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    took.sort();
    took
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len().max(1) as u32;
    (mean, v[v.len() / 2])
}

fn main() {
    let calico = workspace_bin("calico");
    if !is_root() || !calico.exists() || !Path::new(PTP).exists() {
        eprintln!(
            "skipping: needs root, {} (cargo build --release) and {PTP} (containernetworking-plugins)",
            calico.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("ds.db");
    let pool = dir.path().join("pool.yaml");
    let _ = std::fs::write(
        &pool,
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bench}\nspec: {cidr: 10.90.0.0/16}\n",
    );
    let ok = Command::new(workspace_bin("calicoctl"))
        .args(["apply", "-f"])
        .arg(&pool)
        .env("DATASTORE_PATH", &db)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "calicoctl apply failed (cargo build --release -p calicoctl)"
    );

    let calico_conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "calico",
        "nodename": "bench-node", "mtu": 1500, "datastore_type": "local", "datastore_path": db,
        "log_level": "none", "ipam_lock_file": dir.path().join("ipam.lock"),
        "ipam": {"type": "calico-ipam"}})
    .to_string();
    let ptp_conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "ptp", "mtu": 1500,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.91.0.0/16"}]],
                 "dataDir": dir.path().join("host-local")}})
    .to_string();

    let host = TestNetns::new("bh");
    let pod = TestNetns::new("bp");
    let host_ns = NetNs::open(host.path()).unwrap_or_else(|e| panic!("{e}"));
    let pod_path = pod.path();
    let (mut c, mut p) = (Vec::new(), Vec::new());
    host_ns
        .run(|| {
            // Warm-up: page cache, the store's first block claim.
            cycles(&calico, &calico_conf, &pod_path, "wc", 5, &mut Vec::new());
            cycles(
                Path::new(PTP),
                &ptp_conf,
                &pod_path,
                "wp",
                5,
                &mut Vec::new(),
            );
            for r in 0..ROUNDS {
                cycles(
                    &calico,
                    &calico_conf,
                    &pod_path,
                    &format!("c{r}-"),
                    PER_ROUND,
                    &mut c,
                );
                cycles(
                    Path::new(PTP),
                    &ptp_conf,
                    &pod_path,
                    &format!("p{r}-"),
                    PER_ROUND,
                    &mut p,
                );
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let n = c.len();
    let ((cm, c50), (pm, p50)) = (stats(c), stats(p));
    println!("ADD+DEL cycle, {n} each, process per call, inside a network namespace:");
    println!("  calico + calico-ipam (local store): mean {cm:?}, p50 {c50:?}");
    println!("  ptp + host-local (Debian):          mean {pm:?}, p50 {p50:?}");
    println!(
        "  ratio calico / ptp+host-local: mean {:.2}, p50 {:.2} (goal <= 0.5)",
        cm.as_secs_f64() / pm.as_secs_f64(),
        c50.as_secs_f64() / p50.as_secs_f64()
    );

    let report = |name: &str, took: &[Duration]| {
        println!(
            "50 concurrent ADDs on one node, {name}: p50 {:?}, p99 {:?}, max {:?}",
            took[took.len() / 2],
            took[took.len() * 99 / 100],
            took[took.len() - 1]
        );
    };
    report("local store", &burst(&calico, &calico_conf, &host_ns, "bl"));
    let etcd = calico_testutil::EtcdServer::start_in(host.name());
    let ok = Command::new("ip")
        .args(["netns", "exec", host.name()])
        .arg(workspace_bin("calicoctl"))
        .args(["apply", "-f"])
        .arg(&pool)
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", etcd.endpoint())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "calicoctl apply on etcd failed");
    let etcd_conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "calico",
        "nodename": "bench-node", "mtu": 1500, "datastore_type": "etcdv3",
        "etcd_endpoints": etcd.endpoint(), "log_level": "none",
        "ipam_lock_file": dir.path().join("ipam.lock"), "ipam": {"type": "calico-ipam"}})
    .to_string();
    report("etcd", &burst(&calico, &etcd_conf, &host_ns, "be"));
}
