//! Pod traffic through calico-rs against the same path built by hand:
//! `cargo bench -p calico-node --bench throughput` (root, etcd, iperf3).
//!
//! Two nodes in network namespaces on one bridge (see `tests/common`), a
//! client pod on node 1 and a server pod on node 2 attached by the `calico`
//! plugin, and on the same nodes two namespaces wired by hand the way the
//! seeds describe Calico's data path: a veth whose host end has MAC
//! ee:ee:ee:ee:ee:ee and answers ARP for 169.254.1.1 by proxy ARP, a /32
//! address, a host route per pod; between the nodes either a plain route
//! via the other node (no encapsulation, like the BGP mesh) or a VXLAN
//! device of the bench's own with static neighbour and forwarding entries
//! (like `vxlan.calico`), the same MTU on every path. Hand-made traffic
//! crosses the same nodes, so it passes the same base chains and
//! conntrack: the difference is what calico-rs adds for its endpoints.
//!
//! Each row alternates iperf3 runs between the two paths (`ROUNDS` rounds
//! of `SECS` s, default 5 × 3 s) and prints the ratio of the medians, the
//! machine's CPU time per Gbit/s received (from /proc/stat; both nodes are
//! this one kernel, so it is the whole machine's busy time per Gbit moved)
//! and the ratio of TCP request/response rates (1-byte ping-pong over one
//! connection, same alternation). Rows: no encapsulation and VXLAN, each
//! with (a) the namespace's allow-all profile only and (b) 100 policies
//! selecting the pods whose rules go over 1,000 endpoints (sets), the last
//! allowing the client. Goal: ≥ 0.97× in every row.
//!
//! `THROUGHPUT_ROUNDS`, `THROUGHPUT_SECS` and `THROUGHPUT_MODES`
//! (`noencap,vxlan`) change the run; `THROUGHPUT_HOLD=<s>` keeps each set-up
//! that long before measuring, for looking at it by hand.

#![allow(clippy::unwrap_used)] // a bench set-up that fails has nothing to report

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_testutil::TestNetns;
use common::Cluster;
use serde_json::{Value, json};

const MTU: u32 = 1450;
const PROFILE: &str = "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: kns.bench}\n\
                       spec: {ingress: [{action: Allow}], egress: [{action: Allow}]}\n";

fn pool(vxlan: bool) -> String {
    let mode = if vxlan { "Always" } else { "Never" };
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: bench}}\n\
         spec: {{cidr: 10.85.0.0/16, blockSize: 26, ipipMode: Never, vxlanMode: {mode}}}\n"
    )
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn apply(c: &Cluster, name: &str, docs: &[String]) {
    for (i, chunk) in docs.chunks(1000).enumerate() {
        let f = c.dir.path().join(format!("{name}{i}.yaml"));
        std::fs::write(&f, chunk.join("---\n")).unwrap();
        c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    }
}

/// 1,000 endpoints on a node that does not run here, in 100 groups, and
/// 100 policies selecting the bench's pods: policy `k` allows TCP to port
/// 6000+k from group `g<k>` and UDP from the groups' addresses as nets
/// through a selector over all of them; the last also allows the client.
fn policies(c: &Cluster) {
    let endpoints: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n\
                 metadata: {{name: elsewhere-k8s-p{i}-eth0, namespace: bench, labels: {{group: g{g}, tier: t{t}}}}}\n\
                 spec: {{orchestrator: k8s, node: elsewhere, pod: p{i}, endpoint: eth0, \
                 interfaceName: calif{i:010}, ipNetworks: [10.201.{b}.{d}/32], profiles: [kns.bench]}}\n",
                g = i % 100,
                t = i % 10,
                b = i / 256,
                d = i % 256
            )
        })
        .collect();
    apply(c, "endpoints", &endpoints);
    let policies: Vec<String> = (0..100)
        .map(|k| {
            let last = if k == 99 {
                "\n  - {action: Allow, protocol: TCP, source: {selector: role == 'client'}}"
            } else {
                ""
            };
            format!(
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
                 metadata: {{name: p{k:03}, namespace: bench}}\n\
                 spec:\n  order: {k}\n  selector: role in {{'server', 'client'}}\n  types: [Ingress]\n  ingress:\n\
                 \x20 - {{action: Allow, protocol: TCP, source: {{selector: group == 'g{k}'}}, destination: {{ports: [{p}]}}}}\n\
                 \x20 - {{action: Allow, protocol: UDP, source: {{selector: tier == 't{t}' && group != 'g{k}'}}}}\n\
                 \x20 - {{action: Deny, protocol: TCP, source: {{selector: has(group)}}, destination: {{ports: [22]}}}}{last}\n",
                p = 6000 + k,
                t = k % 10
            )
        })
        .collect();
    apply(c, "policies", &policies);
}

/// A namespace wired by hand to node `i` (1-based) as the seeds describe a
/// Calico pod; returns it and its address `10.99.<i>.2`.
fn hand_pod(c: &Cluster, i: usize) -> (TestNetns, String) {
    let pod = TestNetns::new("hpod");
    let ip = format!("10.99.{i}.2");
    c.sh(
        i - 1,
        &format!(
            "ip link add hand0 address ee:ee:ee:ee:ee:ee mtu {MTU} type veth peer name eth0 mtu {MTU} netns {p} && \
             ip link set hand0 up && \
             echo 1 > /proc/sys/net/ipv4/conf/hand0/proxy_arp && \
             echo 0 > /proc/sys/net/ipv4/neigh/hand0/proxy_delay && \
             echo 1 > /proc/sys/net/ipv4/conf/hand0/forwarding && \
             ip route add {ip}/32 dev hand0 scope link",
            p = pod.name()
        ),
    );
    pod.exec(&[
        "sh",
        "-c",
        &format!(
            "ip link set lo up && ip link set eth0 up && ip addr add {ip}/32 dev eth0 && \
             ip route add 169.254.1.1 dev eth0 scope link && \
             ip route add default via 169.254.1.1 dev eth0"
        ),
    ]);
    (pod, ip)
}

/// Routes between the hand-made pods: via the other node, or through a
/// VXLAN device (VNI 4097, port 4790) with static entries.
fn hand_fabric(c: &Cluster, vxlan: bool) {
    for (i, j) in [(1usize, 2usize), (2, 1)] {
        let script = if vxlan {
            format!(
                "ip link add hvx address 02:99:00:00:00:0{i} mtu {MTU} type vxlan id 4097 \
                   dstport 4790 local 172.31.0.{i} dev eth0 nolearning && \
                 ip addr add 10.99.{i}.0/32 dev hvx && ip link set hvx up && \
                 ip neigh add 10.99.{j}.0 lladdr 02:99:00:00:00:0{j} dev hvx nud permanent && \
                 bridge fdb add 02:99:00:00:00:0{j} dev hvx dst 172.31.0.{j} && \
                 ip route add 10.99.{j}.0/24 via 10.99.{j}.0 dev hvx onlink"
            )
        } else {
            format!("ip route add 10.99.{j}.0/24 via 172.31.0.{j} dev eth0")
        };
        c.sh(i - 1, &script);
    }
}

fn wait_connect(ns: &Path, to: SocketAddr) {
    let t = Instant::now();
    loop {
        let ok = NetNs::open(ns)
            .unwrap()
            .run(|| TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok())
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{to} unreachable");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The machine's busy and total jiffies (/proc/stat's first line).
fn cpu() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    (total - idle, total)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn iperf_server(ns: &Path, port: u16) -> Server {
    let child = Command::new("ip")
        .args(["netns", "exec"])
        .arg(ns.file_name().unwrap())
        .args(["iperf3", "-s", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 (apt-get install iperf3)");
    Server(child)
}

/// Gbit/s received and machine CPU seconds spent, of one iperf3 run.
fn iperf(ns: &Path, to: &str, port: u16, secs: u64) -> (f64, f64) {
    for _ in 0..20 {
        let before = cpu();
        let out = Command::new("ip")
            .args(["netns", "exec"])
            .arg(ns.file_name().unwrap())
            .args(["iperf3", "-J", "-c", to, "-p", &port.to_string(), "-t"])
            .arg(secs.to_string())
            .output()
            .unwrap();
        let after = cpu();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(bps) = v
            .pointer("/end/sum_received/bits_per_second")
            .and_then(Value::as_f64)
        {
            // USER_HZ is 100 on Linux.
            let busy = (after.0 - before.0) as f64 / 100.0;
            return (bps / 1e9, busy);
        }
        // The server is still starting (or busy with the last client).
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("iperf3 to {to}:{port} never ran");
}

/// A 1-byte echo server in `ns` on `port`.
fn rr_server(ns: &Path, port: u16) {
    let l = NetNs::open(ns)
        .unwrap()
        .run(move || TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).is_ok() {
                    if s.write_all(&b).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Round trips per second over one connection for `secs`.
fn rr(ns: &Path, to: SocketAddr, secs: u64) -> f64 {
    let mut s = NetNs::open(ns)
        .unwrap()
        .run(|| TcpStream::connect(to))
        .unwrap()
        .unwrap();
    s.set_nodelay(true).unwrap();
    let mut b = [1u8; 1];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(secs) {
        s.write_all(&b).unwrap();
        s.read_exact(&mut b).unwrap();
        n += 1;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    name: String,
    gbit: (f64, f64),
    cpu_per_gbit: (f64, f64),
    rr: (f64, f64),
}

/// Both paths measured in turn: (calico, hand) for throughput, CPU per
/// Gbit/s and request/response rate.
fn measure(name: &str, calico: (&Path, &str), hand: (&Path, &str), server: (&Path, &Path)) -> Row {
    let rounds = env_or("THROUGHPUT_ROUNDS", 5) as usize;
    let secs = env_or("THROUGHPUT_SECS", 3);
    let _s1 = iperf_server(server.0, 5201);
    let _s2 = iperf_server(server.1, 5202);
    let (mut gc, mut gh, mut cc, mut ch) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (g, busy) = iperf(calico.0, calico.1, 5201, secs);
        gc.push(g);
        cc.push(busy / (g * secs as f64));
        let (g, busy) = iperf(hand.0, hand.1, 5202, secs);
        gh.push(g);
        ch.push(busy / (g * secs as f64));
    }
    let (mut rc, mut rh) = (vec![], vec![]);
    let to_c: SocketAddr = format!("{}:7001", calico.1).parse().unwrap();
    let to_h: SocketAddr = format!("{}:7002", hand.1).parse().unwrap();
    for _ in 0..rounds {
        rc.push(rr(calico.0, to_c, secs));
        rh.push(rr(hand.0, to_h, secs));
    }
    Row {
        name: name.to_string(),
        gbit: (median(gc), median(gh)),
        cpu_per_gbit: (median(cc), median(ch)),
        rr: (median(rc), median(rh)),
    }
}

fn run_mode(vxlan: bool, rows: &mut Vec<Row>) {
    let backend = if vxlan { "vxlan" } else { "bird" };
    let mut c = Cluster::with_backend(2, &pool(vxlan), backend);
    apply(&c, "profile", &[PROFILE.to_string()]);
    let (ia, _) = c.add_pod_in(0, "bench", "client", json!({}));
    let (ib, ip_b) = c.add_pod_in(1, "bench", "server", json!({}));
    for (wep, role) in [
        ("node--1-k8s-client-eth0", "client"),
        ("node--2-k8s-server-eth0", "server"),
    ] {
        c.calicoctl(&[
            "label",
            "workloadendpoint",
            wep,
            "-n",
            "bench",
            &format!("role={role}"),
        ]);
    }
    let (ha, _) = hand_pod(&c, 1);
    let (hb, hip_b) = hand_pod(&c, 2);
    hand_fabric(&c, vxlan);
    let (pa, pb): (PathBuf, PathBuf) = (c.pods[ia].path(), c.pods[ib].path());
    rr_server(&pb, 7001);
    rr_server(&hb.path(), 7002);
    wait_connect(&pa, format!("{ip_b}:7001").parse().unwrap());
    wait_connect(&ha.path(), format!("{hip_b}:7002").parse().unwrap());
    let mode = if vxlan { "vxlan" } else { "no-encap" };
    if let Some(secs) = std::env::var("THROUGHPUT_HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // For looking at the set-up by hand (perf, nft counters).
        println!(
            "holding {secs} s: node netns {} {}, client pods {} (calico, {ip_b}) {} (hand, {hip_b})",
            c.nodes[0].ns.name(),
            c.nodes[1].ns.name(),
            c.pods[ia].name(),
            ha.name()
        );
        std::thread::sleep(Duration::from_secs(secs));
    }
    rows.push(measure(
        &format!("{mode} allow-all"),
        (&pa, &ip_b),
        (&ha.path(), &hip_b),
        (&pb, &hb.path()),
    ));
    print_row(rows.last().unwrap());
    policies(&c);
    // The policies are in the kernel once a port no rule allows is shut
    // for the client while 7001 stays open.
    wait_policies(&c, &pa, &pb, &ip_b);
    rows.push(measure(
        &format!("{mode} 100 policies/1000 endpoints"),
        (&pa, &ip_b),
        (&ha.path(), &hip_b),
        (&pb, &hb.path()),
    ));
    print_row(rows.last().unwrap());
}

/// Waits until node 2 has the policies in its ruleset (100 policy chains
/// in `calico-policy`; the last allows the client on every TCP port, so
/// reachability cannot tell) and the client still reaches the server.
fn wait_policies(c: &Cluster, pa: &Path, _pb: &Path, ip_b: &str) {
    let t = Instant::now();
    loop {
        let rules = c.sh(1, "nft list table inet calico-policy 2>/dev/null | grep -c 'comment \"NetworkPolicy(bench/' || true");
        if rules.trim().parse::<usize>().unwrap_or(0) >= 100 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "policies never programmed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_connect(pa, format!("{ip_b}:7001").parse().unwrap());
}

fn print_row(r: &Row) {
    println!(
        "{:<36} | {:>6.2} {:>6.2} {:>5.3} | {:>6.3} {:>6.3} {:>5.3} | {:>8.0} {:>8.0} {:>5.3}",
        r.name,
        r.gbit.0,
        r.gbit.1,
        r.gbit.0 / r.gbit.1,
        r.cpu_per_gbit.0,
        r.cpu_per_gbit.1,
        r.cpu_per_gbit.0 / r.cpu_per_gbit.1,
        r.rr.0,
        r.rr.1,
        r.rr.0 / r.rr.1,
    );
}

fn main() {
    if !calico_testutil::is_root() {
        eprintln!("skipping: needs root (network namespaces)");
        return;
    }
    if Command::new("iperf3").arg("-v").output().is_err() {
        eprintln!("skipping: needs iperf3 (apt-get install iperf3)");
        return;
    }
    let modes = std::env::var("THROUGHPUT_MODES").unwrap_or_else(|_| "noencap,vxlan".into());
    println!(
        "{:<36} | calico   hand  ratio | CPU s/Gbit: calico hand ratio | TCP_RR/s: calico hand ratio",
        "path"
    );
    let mut rows = Vec::new();
    for m in modes.split(',') {
        run_mode(m.trim() == "vxlan", &mut rows);
    }
    let worst = rows
        .iter()
        .map(|r| r.gbit.0 / r.gbit.1)
        .fold(f64::INFINITY, f64::min);
    println!("worst throughput ratio {worst:.3} (goal >= 0.97)");
}
