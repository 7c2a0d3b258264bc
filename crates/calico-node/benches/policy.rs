//! Network policy at scale, on a real two-node cluster (see
//! `tests/common`): `cargo bench -p calico-node --bench policy` (root, etcd).
//!
//! 1. Enforcement latency with 1,000 endpoints in the datastore: a policy
//!    that denies pod a → the pods labelled `pod=b` (b on node 1, d on
//!    node 2) is applied (then deleted) with calicoctl; the time until a's
//!    new connections to b and to d both fail (then both succeed again),
//!    i.e. until both nodes enforce it, is measured 20 times each way;
//!    p50 / p99 printed (goal: within 1 s).
//! 2. TCP throughput from pod a to pod b with no policy, then with 1,000
//!    policies selecting b whose rules match 10,000 endpoints through sets
//!    (and a last one that allows the rest); each phase takes its runs in
//!    turn with a → c, a pod no policy selects, which also gives a ratio
//!    corrected for the machine's drift (goal ≥ 0.95).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use common::Cluster;
use serde_json::json;

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bench}\n\
                    spec: {cidr: 10.83.0.0/16, blockSize: 26, vxlanMode: Always}\n";
const PROFILE: &str = "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: kns.bench}\n\
                       spec: {ingress: [{action: Allow}], egress: [{action: Allow}]}\n";
const DENY: &str = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
                    metadata: {name: deny-a, namespace: bench}\n\
                    spec: {selector: pod == 'b', types: [Ingress], ingress: [{action: Deny, source: {selector: pod == 'a'}}, {action: Allow}]}\n";
const PAYLOAD: usize = 256 << 20;

fn apply_file(c: &Cluster, name: &str, text: &str, verb: &str) {
    let f = c.dir.path().join(name);
    std::fs::write(&f, text).unwrap();
    c.calicoctl(&[verb, "-f", f.to_str().unwrap()]);
}

/// Applies `docs` in files of at most 1,000 documents (the YAML decoder's
/// limit per file).
fn apply_many(c: &Cluster, name: &str, docs: &[String]) {
    for (i, chunk) in docs.chunks(1000).enumerate() {
        apply_file(c, &format!("{name}{i}.yaml"), &chunk.join("---\n"), "apply");
    }
}

/// `count` workload endpoints on a node that does not run here, in groups.
fn fake_endpoints(from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|i| {
            format!(
                "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n\
                 metadata: {{name: elsewhere-k8s-p{i}-eth0, namespace: bench, labels: {{group: g{g}}}}}\n\
                 spec: {{orchestrator: k8s, node: elsewhere, pod: p{i}, endpoint: eth0, interfaceName: calif{i:010},\
                 ipNetworks: [10.{a}.{b}.{d}/32], profiles: [kns.bench]}}\n",
                g = i % 100,
                a = 100 + i / 65536,
                b = (i / 256) % 256,
                d = i % 256
            )
        })
        .collect()
}

fn connects(ns: &PathBuf, to: SocketAddr) -> bool {
    NetNs::open(ns)
        .unwrap()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_millis(100)).is_ok())
        .unwrap_or(false)
}

/// Time until `connects` is `want` for every target (each polled until
/// it is; the slowest counts).
fn until(ns: &PathBuf, targets: &[SocketAddr], want: bool) -> Duration {
    let t = Instant::now();
    let mut pending = targets.to_vec();
    while !pending.is_empty() {
        pending.retain(|&to| connects(ns, to) != want);
        assert!(t.elapsed() < Duration::from_secs(30), "never became {want}");
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    t.elapsed()
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// MB/s of one bulk TCP transfer a → b.
fn throughput(a: &PathBuf, b: &PathBuf, to: SocketAddr) -> f64 {
    let listener = NetNs::open(b)
        .unwrap()
        .run(|| TcpListener::bind(("0.0.0.0", to.port())))
        .unwrap()
        .unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let mut s = NetNs::open(a)
        .unwrap()
        .run(|| TcpStream::connect(to))
        .unwrap()
        .unwrap();
    let chunk = vec![7u8; 1 << 16];
    let t = Instant::now();
    let mut sent = 0;
    while sent < PAYLOAD {
        s.write_all(&chunk).unwrap();
        sent += chunk.len();
    }
    drop(s);
    let got = sink.join().unwrap();
    assert_eq!(got, PAYLOAD);
    PAYLOAD as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median MB/s a → b and a → c over 7 rounds taken in turn (b and c are
/// on the same node; c is governed by no policy), so that drift of the
/// machine weighs on both alike.
fn paired_throughput(
    a: &PathBuf,
    b: (&PathBuf, &str),
    c: (&PathBuf, &str),
    port: u16,
) -> (f64, f64) {
    let (mut tb, mut tc) = (Vec::new(), Vec::new());
    for i in 0..7 {
        tb.push(throughput(
            a,
            b.0,
            format!("{}:{}", b.1, port + 2 * i).parse().unwrap(),
        ));
        tc.push(throughput(
            a,
            c.0,
            format!("{}:{}", c.1, port + 2 * i + 1).parse().unwrap(),
        ));
    }
    (median(tb), median(tc))
}

fn main() {
    if !calico_testutil::is_root() {
        eprintln!("skipping: needs root (network namespaces)");
        return;
    }
    let mut c = Cluster::new(2, POOL);
    apply_file(&c, "profile.yaml", PROFILE, "apply");
    let (ia, _) = c.add_pod_in(0, "bench", "a", json!({}));
    let (ib, ip_b) = c.add_pod_in(0, "bench", "b", json!({}));
    let (ic, ip_c) = c.add_pod_in(0, "bench", "c", json!({}));
    let (id, ip_d) = c.add_pod_in(1, "bench", "d", json!({}));
    for (name, pod) in [
        ("node--1-k8s-a-eth0", "a"),
        ("node--1-k8s-b-eth0", "b"),
        ("node--2-k8s-d-eth0", "b"),
    ] {
        c.calicoctl(&[
            "label",
            "workloadendpoint",
            name,
            "-n",
            "bench",
            &format!("pod={pod}"),
        ]);
    }
    let (a, b, pc) = (c.pods[ia].path(), c.pods[ib].path(), c.pods[ic].path());
    let listener = NetNs::open(&b)
        .unwrap()
        .run(|| TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let listener_d = NetNs::open(c.pods[id].path())
        .unwrap()
        .run(|| TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || for _ in listener_d.incoming() {});
    let to: SocketAddr = format!("{ip_b}:80").parse().unwrap();
    let to_d: SocketAddr = format!("{ip_d}:80").parse().unwrap();
    until(&a, &[to, to_d], true);

    let t = Instant::now();
    apply_many(&c, "eps1-", &fake_endpoints(0, 1000));
    println!(
        "1,000 endpoints written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        apply_file(&c, "deny.yaml", DENY, "apply");
        on.push(until(&a, &[to, to_d], false));
        apply_file(&c, "deny.yaml", DENY, "delete");
        off.push(until(&a, &[to, to_d], true));
    }
    println!("policy change to enforcement on both nodes, 1,000 endpoints (goal: within 1 s):");
    for (what, v) in [("deny applied", &mut on), ("deny deleted", &mut off)] {
        println!(
            "  {what}: p50 {:>6.0} ms  p99 {:>6.0} ms",
            percentile(v, 0.5).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3
        );
    }

    let (base_b, base_c) = paired_throughput(&a, (&b, &ip_b), (&pc, &ip_c), 5000);
    apply_many(&c, "eps2-", &fake_endpoints(1000, 9000));
    let policies: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p{i}}}\n\
                 spec: {{order: {i}, selector: pod == 'b', types: [Ingress],\
                 ingress: [{{action: Deny, protocol: TCP, source: {{selector: group == 'g{}'}}, destination: {{ports: [{}]}}}}]}}\n",
                i % 100,
                1000 + i
            )
        })
        .chain(std::iter::once(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: allow-rest}\n\
             spec: {order: 5000, selector: pod == 'b', types: [Ingress], ingress: [{action: Allow}]}\n"
                .to_string(),
        ))
        .collect();
    let t = Instant::now();
    apply_many(&c, "policies-", &policies);
    println!(
        "10,000 endpoints and 1,000 policies written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Enforced: the table holds the sets of all 10,000 addresses.
    let t = Instant::now();
    while c
        .sh(
            0,
            "nft list table inet calico-policy | grep -c 'jump pi-' || true",
        )
        .trim()
        .parse::<usize>()
        .unwrap_or(0)
        < 1000
    {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "policies never enforced"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "enforced {:.1} s after the write",
        t.elapsed().as_secs_f64()
    );
    // Let the agent finish the passes the writes started.
    std::thread::sleep(Duration::from_secs(5));
    let cpu = || {
        std::process::Command::new("sh")
            .args(["-c", "ps -C calico-node -o time=,etime= | tr '\\n' ' '"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    eprintln!("agents' CPU before: {}", cpu());
    let (with_b, with_c) = paired_throughput(&a, (&b, &ip_b), (&pc, &ip_c), 5100);
    eprintln!("agents' CPU after: {}", cpu());
    println!(
        "TCP throughput, {} MiB per run, median of 7 runs taken in turn with a -> c (no policy selects c):",
        PAYLOAD >> 20
    );
    println!(
        "  no policy                                a -> b {base_b:>6.0} MB/s  (a -> c {base_c:>6.0})"
    );
    println!(
        "  1,000 policies, 10,000 endpoints in sets a -> b {with_b:>6.0} MB/s  (a -> c {with_c:>6.0})"
    );
    println!(
        "  ratio {:.3}; corrected for drift by a -> c: {:.3} (goal >= 0.95)",
        with_b / base_b,
        (with_b / with_c) / (base_b / base_c)
    );
}
