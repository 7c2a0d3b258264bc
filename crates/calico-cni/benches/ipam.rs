//! calico-ipam against Debian's `host-local`, side by side in one run.
//!
//! `cargo bench -p calico-cni --bench ipam` (needs Debian's
//! containernetworking-plugins for /usr/lib/cni/host-local, and etcd).
//!
//! Prints:
//! - the mean wall time of one ADD+DEL pair of each plugin, run as the
//!   container runtime runs them (a process per call; the plugins take
//!   turns pair by pair, so load from elsewhere weighs on both), and the ratio
//!   calico-ipam / host-local on the local store (goal: at most 0.5), both
//!   with the plugin opening the store itself and (as root, as on a real
//!   node) with calico-node running and serving the allocation;
//! - ADD throughput of calico-ipam with 1 and 24 concurrent callers, on the
//!   local store and on etcd.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const HOST_LOCAL: &str = "/usr/lib/cni/host-local";
const PAIRS: usize = 300;
const THROUGHPUT_ADDS: usize = 480;

fn calico_ipam() -> PathBuf {
    calico_testutil::workspace_bin("calico-ipam")
}

fn exec(bin: &Path, command: &str, container: &str, conf: &str) -> bool {
    let Ok(mut child) = Command::new(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", format!("/var/run/netns/{container}"))
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p",
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
    child.wait_with_output().is_ok_and(|o| o.status.success())
}

/// One ADD+DEL pair: its wall time.
fn pair(bin: &Path, conf: &str, container: &str) -> Duration {
    let t = Instant::now();
    assert!(
        exec(bin, "ADD", container, conf),
        "{} ADD failed",
        bin.display()
    );
    assert!(
        exec(bin, "DEL", container, conf),
        "{} DEL failed",
        bin.display()
    );
    t.elapsed()
}

/// Mean time of one ADD+DEL pair of each of `plugins` (binary, config),
/// run in turn pair by pair so that whatever else the machine does weighs
/// on all of them alike.
fn add_del(plugins: &[(&Path, &str)], tag: &str) -> Vec<Duration> {
    // Warm up the page cache and the stores.
    for i in 0..10 {
        for (k, (bin, conf)) in plugins.iter().enumerate() {
            pair(bin, conf, &format!("warm{tag}{k}x{i}"));
        }
    }
    let mut total = vec![Duration::ZERO; plugins.len()];
    for i in 0..PAIRS {
        for (k, (bin, conf)) in plugins.iter().enumerate() {
            total[k] += pair(bin, conf, &format!("{tag}{k}x{i}"));
        }
    }
    total.into_iter().map(|t| t / PAIRS as u32).collect()
}

/// ADDs per second with `callers` concurrent callers.
fn throughput(bin: &Path, conf: &str, callers: usize, tag: &str) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..callers)
        .map(|_| {
            let (next, bin, conf, tag) = (
                next.clone(),
                bin.to_path_buf(),
                conf.to_string(),
                tag.to_string(),
            );
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= THROUGHPUT_ADDS {
                        return;
                    }
                    assert!(exec(&bin, "ADD", &format!("{tag}{i}"), &conf), "ADD failed");
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let rate = THROUGHPUT_ADDS as f64 / t.elapsed().as_secs_f64();
    for i in 0..THROUGHPUT_ADDS {
        exec(bin, "DEL", &format!("{tag}{i}"), conf);
    }
    rate
}

fn calicoctl_apply(env: &[(&str, String)], yaml: &str, dir: &Path) {
    let f = dir.join("pool.yaml");
    let _ = std::fs::write(&f, yaml);
    let bin = calico_ipam().with_file_name("calicoctl");
    let mut cmd = Command::new(bin);
    cmd.args(["apply", "-f"]).arg(&f);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let ok = cmd.status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "calicoctl apply failed (build it: cargo build --release -p calicoctl)"
    );
}

fn calico_conf(store: &Value, dir: &Path) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "bench", "type": "calico", "nodename": "bench-node",
        "log_level": "none", "log_file_path": dir.join("cni.log"),
        "ipam_lock_file": dir.join("ipam.lock"), "ipam": {"type": "calico-ipam"}});
    if let (Some(c), Some(s)) = (c.as_object_mut(), store.as_object()) {
        c.extend(s.clone());
    }
    c.to_string()
}

fn main() {
    let bin = calico_ipam();
    if !bin.exists() || !Path::new(HOST_LOCAL).exists() {
        eprintln!(
            "skipping: needs {} (cargo build --release) and {HOST_LOCAL} (containernetworking-plugins)",
            bin.display()
        );
        return;
    }
    let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bench}\nspec: {cidr: 10.90.0.0/16}\n";

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("ds.db").display().to_string();
    calicoctl_apply(&[("DATASTORE_PATH", db.clone())], pool, dir.path());
    let local = calico_conf(
        &json!({"datastore_type": "local", "datastore_path": db}),
        dir.path(),
    );
    let hl_dir = dir.path().join("host-local");
    let host_local = json!({"cniVersion": "1.0.0", "name": "bench", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.91.0.0/16", "dataDir": hl_dir}})
    .to_string();

    let hl_bin = Path::new(HOST_LOCAL);
    println!("ADD+DEL pair, one process per call, {PAIRS} pairs each, run in turn (mean):");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let r = add_del(&[(hl_bin, &host_local), (&bin, &local)], "a");
    let (hl, cl) = (r[0], r[1]);
    println!("  host-local (reference)      {:>8.2} ms", ms(hl));
    println!("  calico-ipam, local store    {:>8.2} ms", ms(cl));
    println!(
        "  ratio calico-ipam/host-local  {:.2} (the plugin opens the store itself)",
        ratio(cl, hl)
    );

    // As on a real node, with calico-node running: the plugin asks its IPAM
    // service (the agent runs in a namespace of its own, so its dataplane
    // work stays there).
    if calico_testutil::is_root() && calico_ipam().with_file_name("calico-node").exists() {
        let ns = calico_testutil::TestNetns::new("ib");
        let sock = dir.path().join("ipam.sock");
        let port = calico_testutil::free_port().to_string();
        let mut agent = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(calico_ipam().with_file_name("calico-node"))
            .env("NODENAME", "bench-node")
            .env("DATASTORE_TYPE", "local")
            .env("DATASTORE_PATH", &db)
            .env("CALICO_STATE_DIR", dir.path().join("state"))
            .env("CALICO_IPAM_SOCKET", &sock)
            .env("CALICO_NETWORKING_BACKEND", "none")
            .env("NO_DEFAULT_POOLS", "true")
            .env("IP", "192.0.2.1/24")
            .env("FELIX_LOGSEVERITYSCREEN", "Error")
            .env("FELIX_HEALTHPORT", &port)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let t = std::time::Instant::now();
        while !sock.exists() && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut svc: Value = serde_json::from_str(&local).unwrap_or_default();
        svc["ipam_socket"] = json!(sock);
        let svc = svc.to_string();
        let r = add_del(&[(hl_bin, &host_local), (&bin, &svc)], "b");
        let _ = agent.kill();
        let _ = agent.wait();
        let (hl, cs) = (r[0], r[1]);
        println!("  host-local (reference)      {:>8.2} ms", ms(hl));
        println!("  calico-ipam via calico-node {:>8.2} ms", ms(cs));
        println!(
            "  ratio calico-ipam/host-local  {:.2} (goal <= 0.50; calico-node serves the allocation, as on a node)",
            ratio(cs, hl)
        );
    }

    let server = calico_testutil::EtcdServer::start();
    calicoctl_apply(
        &[
            ("DATASTORE_TYPE", "etcdv3".into()),
            ("ETCD_ENDPOINTS", server.endpoint()),
        ],
        pool,
        dir.path(),
    );
    let etcd = calico_conf(
        &json!({"datastore_type": "etcdv3", "etcd_endpoints": server.endpoint()}),
        dir.path(),
    );
    let ce = add_del(&[(&bin, &etcd)], "ce")[0];
    println!("  calico-ipam, etcd           {:>8.2} ms", ms(ce));

    println!("ADD throughput, {THROUGHPUT_ADDS} ADDs (one process each):");
    for (name, conf) in [("local store", &local), ("etcd", &etcd)] {
        for callers in [1, 24] {
            let r = throughput(&bin, conf, callers, &format!("t{callers}{}", &name[..1]));
            println!("  {name:<12} {callers:>2} concurrent callers: {r:>8.1} ADD/s");
        }
    }
    let hl1 = throughput(Path::new(HOST_LOCAL), &host_local, 1, "th1");
    let hl24 = throughput(Path::new(HOST_LOCAL), &host_local, 24, "th24");
    println!("  host-local    1 concurrent caller:  {hl1:>8.1} ADD/s (reference)");
    println!("  host-local   24 concurrent callers: {hl24:>8.1} ADD/s (reference)");
}
