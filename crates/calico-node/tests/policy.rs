//! Network policy, end to end, in the style of Kubernetes' network policy
//! e2e tests: two nodes (see `common`), three namespaces × three pods
//! attached by the real plugin, TCP and UDP servers on ports 80 and 81 in
//! every pod. For each policy case the full reachability matrix, probed
//! with real connections, must equal what `calico_policy::oracle` decides
//! from the same resources — the oracle reads the resources only, never the
//! nftables table.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_policy::model::EndpointId;
use calico_policy::oracle::{Packet, Peer};
use calico_policy::{PolicyInput, evaluate};
use calico_testutil::require_root;
use common::Cluster;
use serde_json::{Value, json};

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pol}\n\
                    spec: {cidr: 10.82.0.0/16, blockSize: 26, vxlanMode: Always}\n";

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];
const PORTS: [u16; 2] = [80, 81];
const TCP: u8 = 6;
const UDP: u8 = 17;

struct Pod {
    ns: &'static str,
    name: &'static str,
    wep: String,
    ip: Ipv4Addr,
    /// The pod's network namespace.
    netns: std::path::PathBuf,
}

/// Kubernetes namespaces as Calico keeps them: a `kns.<ns>` profile that
/// allows and carries the namespace's labels with the `pcns.` prefix.
fn namespace_profile(ns: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: kns.{ns}}}\n\
         spec:\n  ingress: [{{action: Allow}}]\n  egress: [{{action: Allow}}]\n\
         \x20 labelsToApply: {{pcns.ns: '{ns}', pcns.projectcalico.org/name: '{ns}'}}\n"
    )
}

fn yaml(doc: &str) -> Value {
    calico_api::codec::yaml_value(doc).unwrap()
}

fn apply(c: &Cluster, docs: &[String]) {
    for (i, d) in docs.iter().enumerate() {
        let f = c.dir.path().join(format!("doc{i}.yaml"));
        std::fs::write(&f, d).unwrap();
        c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    }
}

fn delete(c: &Cluster, docs: &[String]) {
    for (i, d) in docs.iter().enumerate().rev() {
        let f = c.dir.path().join(format!("del{i}.yaml"));
        std::fs::write(&f, d).unwrap();
        c.calicoctl(&["delete", "-f", f.to_str().unwrap()]);
    }
}

/// Serves TCP (accept) and UDP (echo) on both ports inside the pod.
fn serve(pod: &Pod) {
    let ns = NetNs::open(&pod.netns).unwrap();
    for port in PORTS {
        let tcp = ns
            .run(|| TcpListener::bind(("0.0.0.0", port)))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                drop(conn);
            }
        });
        let udp = ns
            .run(|| UdpSocket::bind(("0.0.0.0", port)))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        });
    }
}

/// Whether a new connection from `from` reaches `to`.
fn probe(from: &Pod, to: &Pod, protocol: u8, port: u16) -> bool {
    let ns = NetNs::open(&from.netns).unwrap();
    let dst = SocketAddr::from((to.ip, port));
    let wait = Duration::from_millis(800);
    ns.run(|| {
        if protocol == TCP {
            return TcpStream::connect_timeout(&dst, wait).is_ok();
        }
        let Ok(s) = UdpSocket::bind("0.0.0.0:0") else {
            return false;
        };
        let _ = s.set_read_timeout(Some(wait / 2));
        let mut buf = [0u8; 8];
        (0..2).any(|_| s.send_to(b"ping", dst).is_ok() && s.recv_from(&mut buf).is_ok())
    })
    .unwrap_or(false)
}

type Key = (usize, usize, u8, u16);

fn all_keys(pods: &[Pod]) -> Vec<Key> {
    let mut keys = Vec::new();
    for a in 0..pods.len() {
        for b in (0..pods.len()).filter(|b| *b != a) {
            for proto in [TCP, UDP] {
                for port in PORTS {
                    keys.push((a, b, proto, port));
                }
            }
        }
    }
    keys
}

/// What the oracle says for every pair, from the resources alone:
/// (pair, allowed, logged by a `Log` rule).
fn expected(input: &PolicyInput, pods: &[Pod]) -> Vec<(Key, bool, bool)> {
    let id = |p: &Pod| Peer::Workload(EndpointId::workload(p.ns, &p.wep));
    all_keys(pods)
        .into_iter()
        .map(|k @ (a, b, protocol, port)| {
            let p = Packet {
                src: pods[a].ip.into(),
                dst: pods[b].ip.into(),
                protocol,
                src_port: 40000,
                dst_port: port,
                icmp_type: 0,
                icmp_code: 0,
                from: id(&pods[a]),
                to: id(&pods[b]),
            };
            let v = evaluate(input, &p);
            (k, v.allowed, v.logs > 0)
        })
        .collect()
}

/// Lets netfilter log from network namespaces other than the first (the
/// nodes here are namespaces) while it lives; restores the setting after.
struct NetnsLogging(String);

const NF_LOG_ALL_NETNS: &str = "/proc/sys/net/netfilter/nf_log_all_netns";

impl NetnsLogging {
    fn enable() -> NetnsLogging {
        let old = std::fs::read_to_string(NF_LOG_ALL_NETNS).unwrap();
        std::fs::write(NF_LOG_ALL_NETNS, "1").unwrap();
        NetnsLogging(old)
    }
}

impl Drop for NetnsLogging {
    fn drop(&mut self) {
        let _ = std::fs::write(NF_LOG_ALL_NETNS, self.0.trim());
    }
}

/// The kernel's `Log` lines as they are written: a thread reads
/// `/dev/kmsg` from its end as records come. Reading only after a case's
/// probes lost lines: the ring buffer is small (128 KiB here) and a case's
/// `Log` lines, with whatever else the kernel logs meanwhile, can outgrow
/// it.
struct KernelLog {
    /// (sequence number, message) of `calico-packet: ` records.
    records: std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>,
    /// The last sequence number read, and records overwritten unread.
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
    lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl KernelLog {
    fn start() -> KernelLog {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::Ordering;
        const O_NONBLOCK: i32 = 0o4000;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open("/dev/kmsg")
            .unwrap();
        f.seek(SeekFrom::End(0)).unwrap();
        let k = KernelLog {
            records: Default::default(),
            last: Default::default(),
            lost: Default::default(),
            stop: Default::default(),
        };
        let (records, last, lost, stop) = (
            k.records.clone(),
            k.last.clone(),
            k.lost.clone(),
            k.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while !stop.load(Ordering::Relaxed) {
                match f.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        // "prio,seq,time,flags;message"
                        let rec = String::from_utf8_lossy(&buf[..n]);
                        let Some((head, msg)) = rec.split_once(';') else {
                            continue;
                        };
                        let Some(seq) = head.split(',').nth(1).and_then(|s| s.parse().ok()) else {
                            continue;
                        };
                        if msg.starts_with("calico-packet: ") {
                            records
                                .lock()
                                .unwrap()
                                .push((seq, msg.trim_end().to_string()));
                        }
                        last.store(seq, Ordering::SeqCst);
                    }
                    // Records overwritten before we read them.
                    Err(e) if e.raw_os_error() == Some(32) => {
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        k
    }

    /// The sequence number of the last record read.
    fn mark(&self) -> u64 {
        self.last.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `Log` lines after `mark`, once the reader has caught up.
    fn since(&self, mark: u64) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|(seq, _)| *seq > mark)
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn lost(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for KernelLog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a `Log` rule's kernel line for the pair is among `lines`.
fn logged(lines: &[String], pods: &[Pod], (a, b, proto, port): Key) -> bool {
    let addrs = format!("SRC={} DST={} ", pods[a].ip, pods[b].ip);
    let proto = if proto == TCP {
        "PROTO=TCP "
    } else {
        "PROTO=UDP "
    };
    let port = format!(" DPT={port} ");
    lines.iter().any(|l| {
        l.starts_with("calico-packet: ")
            && l.contains(&addrs)
            && l.contains(proto)
            && l.contains(&port)
    })
}

/// The matrix as the dataplane has it, probed in parallel.
fn actual(pods: &[Pod]) -> Vec<(Key, bool)> {
    let keys = all_keys(pods);
    let mut out = Vec::new();
    for chunk in keys.chunks(72) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&k @ (a, b, proto, port)| {
                    s.spawn(move || (k, probe(&pods[a], &pods[b], proto, port)))
                })
                .collect();
            out.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    out
}

fn describe(pods: &[Pod], (a, b, proto, port): Key, allowed: bool) -> String {
    format!(
        "{}/{} -> {}/{} {}:{port} {}",
        pods[a].ns,
        pods[a].name,
        pods[b].ns,
        pods[b].name,
        if proto == TCP { "tcp" } else { "udp" },
        if allowed { "allowed" } else { "denied" }
    )
}

/// The input the oracle decides from: the case's documents, the namespace
/// profiles, the endpoints as stored.
fn oracle_input(c: &Cluster, docs: &[String]) -> PolicyInput {
    let mut input = PolicyInput::default();
    let weps: Value =
        serde_json::from_str(&c.calicoctl(&["get", "workloadendpoints", "-A", "-o", "json"]))
            .unwrap();
    let items = weps["items"].as_array().cloned().unwrap_or_default();
    let profiles = NAMESPACES.iter().map(|ns| yaml(&namespace_profile(ns)));
    for v in items
        .into_iter()
        .chain(profiles)
        .chain(docs.iter().map(|d| yaml(d)))
    {
        input.add_document(v).unwrap();
    }
    input
}

struct Case {
    name: &'static str,
    docs: Vec<String>,
}

fn cases(pods: &[Pod]) -> Vec<Case> {
    let ip = |ns: &str, name: &str| {
        pods.iter()
            .find(|p| p.ns == ns && p.name == name)
            .map(|p| p.ip)
            .unwrap()
    };
    let k8s = |ns: &str, name: &str, spec: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {{name: {name}, namespace: '{ns}'}}\nspec:\n{spec}"
        )
    };
    let np = |ns: &str, name: &str, spec: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
             metadata: {{name: {name}, namespace: '{ns}'}}\nspec:\n{spec}"
        )
    };
    let gnp = |name: &str, spec: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
             metadata: {{name: {name}}}\nspec:\n{spec}"
        )
    };
    vec![
        Case {
            name: "no policy: everything allowed",
            docs: vec![],
        },
        Case {
            name: "k8s default deny ingress in x",
            docs: vec![k8s("x", "deny-in", "  podSelector: {}\n  policyTypes: [Ingress]\n")],
        },
        Case {
            name: "k8s default deny egress in y",
            docs: vec![k8s("y", "deny-out", "  podSelector: {}\n  policyTypes: [Egress]\n")],
        },
        Case {
            name: "k8s allow into x from namespace y only",
            docs: vec![k8s(
                "x",
                "from-y",
                "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: 'y'}}\n",
            )],
        },
        Case {
            name: "k8s allow into x/a from pods b of x only",
            docs: vec![k8s(
                "x",
                "from-b",
                "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n",
            )],
        },
        Case {
            name: "k8s allow into y from pod a of namespace z (namespace and pod)",
            docs: vec![k8s(
                "y",
                "from-z-a",
                "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: 'z'}}\n      podSelector: {matchLabels: {pod: a}}\n",
            )],
        },
        Case {
            name: "k8s ipBlock with except into z",
            docs: vec![k8s(
                "z",
                "block",
                &format!(
                    "  podSelector: {{}}\n  ingress:\n  - from:\n    - ipBlock: {{cidr: 10.82.0.0/16, except: [{}/32]}}\n",
                    ip("x", "a")
                ),
            )],
        },
        Case {
            name: "k8s TCP port range 80-81 into x",
            docs: vec![k8s(
                "x",
                "range",
                "  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: TCP, port: 80, endPort: 81}\n",
            )],
        },
        Case {
            name: "k8s named port into x (TCP 81 only)",
            docs: vec![k8s(
                "x",
                "named",
                "  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: TCP, port: web-alt}\n",
            )],
        },
        Case {
            name: "calico egress from y to one net only",
            docs: vec![np(
                "y",
                "to-net",
                &format!(
                    "  selector: all()\n  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {{nets: [{}/32]}}\n",
                    ip("z", "b")
                ),
            )],
        },
        Case {
            name: "tiers: security passes x into z, denies the rest; default tier allows UDP",
            docs: vec![
                "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n".to_string(),
                gnp(
                    "security.guard-z",
                    "  tier: security\n  order: 10\n  namespaceSelector: ns == 'z'\n  types: [Ingress]\n  ingress:\n  - action: Pass\n    source: {namespaceSelector: ns == 'x'}\n  - action: Deny\n",
                ),
                np(
                    "z",
                    "udp-only",
                    "  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: UDP\n",
                ),
            ],
        },
        Case {
            name: "GlobalNetworkPolicy over namespace y denies ingress from x",
            docs: vec![gnp(
                "y-not-from-x",
                "  namespaceSelector: ns == 'y'\n  types: [Ingress]\n  ingress:\n  - action: Deny\n    source: {namespaceSelector: ns == 'x'}\n  - action: Allow\n",
            )],
        },
        Case {
            name: "Deny before Allow by order",
            docs: vec![
                np(
                    "x",
                    "allow-all",
                    "  order: 20\n  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Allow\n",
                ),
                np(
                    "x",
                    "deny-c",
                    "  order: 10\n  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Deny\n    source: {selector: pod == 'c'}\n",
                ),
            ],
        },
        Case {
            name: "Log then allow UDP into z",
            docs: vec![np(
                "z",
                "log-udp",
                "  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Log\n  - action: Allow\n    protocol: UDP\n",
            )],
        },
        Case {
            name: "protocol number and notPorts into x",
            docs: vec![np(
                "x",
                "tcp-not-81",
                "  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: 6\n    destination: {notPorts: [81]}\n",
            )],
        },
        Case {
            name: "pods a everywhere take only UDP 81, and only from namespace y",
            docs: vec![gnp(
                "a-udp-81",
                "  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: UDP\n    source: {namespaceSelector: ns == 'y'}\n    destination: {ports: [81]}\n",
            )],
        },
    ]
}

#[test]
fn reachability_matches_the_oracle() {
    require_root!();
    let mut c = Cluster::new(2, POOL);
    let profiles: Vec<String> = NAMESPACES.iter().map(|ns| namespace_profile(ns)).collect();
    apply(&c, &profiles);
    let mut pods = Vec::new();
    for (i, ns) in NAMESPACES.iter().enumerate() {
        for (j, name) in PODS.iter().enumerate() {
            let node = (i * PODS.len() + j) % 2;
            let (idx, ip) = c.add_pod_in(node, ns, name, json!({}));
            let wep = format!("node--{}-k8s-{name}-eth0", node + 1);
            // Labels and named ports, as the orchestrator would set them.
            let mut v: Value = serde_json::from_str(&c.calicoctl(&[
                "get",
                "workloadendpoint",
                &wep,
                "-n",
                ns,
                "-o",
                "json",
            ]))
            .unwrap();
            v["metadata"]["labels"]["pod"] = json!(name);
            v["spec"]["ports"] = json!([{"name": "web-alt", "port": 81, "protocol": "TCP"}]);
            let f = c.dir.path().join("wep.json");
            std::fs::write(&f, v.to_string()).unwrap();
            c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
            pods.push(Pod {
                ns,
                name,
                wep,
                ip: ip.parse().unwrap(),
                netns: c.pods[idx].path().to_path_buf(),
            });
        }
    }
    for p in &pods {
        serve(p);
    }
    let mut failures = Vec::new();
    // CALICO_POLICY_CASES=a,b runs only the cases whose names contain a or b.
    let only = std::env::var("CALICO_POLICY_CASES").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| name.contains(o));
    let _logging = NetnsLogging::enable();
    let klog = KernelLog::start();
    for case in cases(&pods).into_iter().filter(|c| wanted(c.name)) {
        apply(&c, &case.docs);
        let want = expected(&oracle_input(&c, &case.docs), &pods);
        // Enforcement takes a moment to reach both nodes: probe until the
        // matrix matches or the deadline passes.
        let deadline = Instant::now() + Duration::from_secs(15);
        // Log lines are taken from the last round only: earlier rounds may
        // have run while the previous case's policies were still enforced.
        let mut log_mark;
        let mismatches = loop {
            log_mark = klog.mark();
            let got = actual(&pods);
            let diff: Vec<String> = want
                .iter()
                .zip(&got)
                .filter(|(w, g)| w.1 != g.1)
                .map(|(w, g)| {
                    format!(
                        "{} (oracle: {})",
                        describe(&pods, g.0, g.1),
                        if w.1 { "allow" } else { "deny" }
                    )
                })
                .collect();
            if diff.is_empty() || Instant::now() > deadline {
                break diff;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        // Log rules: a kernel line for exactly the pairs the oracle logs.
        let lines = klog.since(log_mark);
        let log_mismatches: Vec<String> = want
            .iter()
            .filter(|w| w.2 != logged(&lines, &pods, w.0))
            .map(|w| {
                format!(
                    "{}: {} (oracle: {})",
                    describe(&pods, w.0, w.1),
                    if w.2 { "no log line" } else { "logged" },
                    if w.2 { "logged" } else { "not logged" }
                )
            })
            .collect();
        let denied = want.iter().filter(|w| !w.1).count();
        let logs = want.iter().filter(|w| w.2).count();
        eprintln!(
            "case {:?}: {} of {} denied, {} logged, {} mismatches, {} log mismatches",
            case.name,
            denied,
            want.len(),
            logs,
            mismatches.len(),
            log_mismatches.len()
        );
        let mismatches: Vec<String> = mismatches.into_iter().chain(log_mismatches).collect();
        if !mismatches.is_empty() {
            eprintln!(
                "node-1's table:\n{}",
                c.sh(0, "nft list table inet calico-policy")
            );
            failures.push(format!(
                "{} (kernel log records lost unread so far: {}):\n  {}",
                case.name,
                klog.lost(),
                mismatches.join("\n  ")
            ));
        }
        delete(&c, &case.docs);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether a new TCP connection from inside network namespace `ns` to
/// `to` succeeds.
fn tcp_from(ns: &std::path::Path, to: SocketAddr) -> bool {
    NetNs::open(ns)
        .unwrap()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_millis(500)).is_ok())
        .unwrap_or(false)
}

/// Accepts (and drops) connections on `port` inside network namespace `ns`.
fn listen_in(ns: &std::path::Path, port: u16) {
    let l = NetNs::open(ns)
        .unwrap()
        .run(|| TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || for _ in l.incoming() {});
}

/// Polls `check` until it returns `want`; false if it never does within 15 s.
fn becomes(want: bool, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if check() == want {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Host endpoints on the nodes' own interface (`eth0`, which also carries
/// the VXLAN overlay and the agents' etcd connections): with no policy
/// they deny everything but Calico's failsafe ports and the overlay
/// between the cluster's hosts, so neither SSH, the datastore nor pod
/// traffic between nodes is cut; a GlobalNetworkPolicy then opens a port;
/// `defaultEndpointToHostAction` decides whether a pod reaches its host.
#[test]
fn host_endpoints_keep_failsafe_ports_and_the_overlay() {
    require_root!();
    let mut c = Cluster::new(2, POOL);
    apply(&c, &[namespace_profile("x")]);
    let (p1, ip1) = c.add_pod_in(0, "x", "a", json!({}));
    let (p2, ip2) = c.add_pod_in(1, "x", "b", json!({}));
    let (pod1, pod2) = (c.pods[p1].path(), c.pods[p2].path());
    let node1 = c.nodes[0].ns.path();
    let fabric = c.fabric.path();
    for port in [22, 8080] {
        listen_in(&node1, port);
    }
    listen_in(&fabric, 8081);
    listen_in(&pod2, 80);
    let node1_at = |port: u16| SocketAddr::from(([172, 31, 0, 1], port));
    let etcd: SocketAddr = c
        .etcd
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let fabric_8081 = SocketAddr::from(([172, 31, 0, 254], 8081));
    let pod2_80: SocketAddr = format!("{ip2}:80").parse().unwrap();
    let _ = ip1;

    // Before: everything open, except a pod to its host (Calico's default
    // defaultEndpointToHostAction is Drop).
    assert!(tcp_from(&fabric, node1_at(8080)));
    assert!(tcp_from(&node1, fabric_8081));
    assert!(becomes(true, || tcp_from(&pod1, pod2_80)));
    assert!(!tcp_from(&pod1, node1_at(8080)), "pod to its host: Drop");

    let heps: Vec<String> = (1..=2)
        .map(|i| {
            format!(
                "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: node-{i}-eth0, labels: {{role: node}}}}\n\
                 spec: {{node: node-{i}, interfaceName: eth0, expectedIPs: [172.31.0.{i}]}}\n"
            )
        })
        .collect();
    apply(&c, &heps);
    assert!(
        becomes(false, || tcp_from(&fabric, node1_at(8080))),
        "a host endpoint without policy denies"
    );
    assert!(
        tcp_from(&fabric, node1_at(22)),
        "SSH (failsafe in) stays open"
    );
    assert!(
        !tcp_from(&node1, fabric_8081),
        "the node's egress is denied"
    );
    assert!(tcp_from(&node1, etcd), "etcd (failsafe out) stays open");
    assert!(
        tcp_from(&pod1, pod2_80),
        "pods across nodes: VXLAN between the hosts passes"
    );

    // The agents still read the datastore: a policy for the host endpoints
    // is enforced.
    let open = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: node-8080}\n\
                spec: {selector: role == 'node', types: [Ingress], ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]}\n"
        .to_string();
    apply(&c, std::slice::from_ref(&open));
    assert!(
        becomes(true, || tcp_from(&fabric, node1_at(8080))),
        "a GlobalNetworkPolicy opens 8080 on the host endpoints"
    );
    assert!(!tcp_from(&node1, fabric_8081), "egress is still denied");

    // defaultEndpointToHostAction: workload → its own host.
    let felix = |action: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {{name: default}}\n\
             spec: {{defaultEndpointToHostAction: {action}}}\n"
        )
    };
    apply(&c, &[felix("Accept")]);
    assert!(
        becomes(true, || tcp_from(&pod1, node1_at(8080))),
        "Accept lets a pod reach its host"
    );
    apply(&c, &[felix("Drop")]);
    assert!(
        becomes(false, || tcp_from(&pod1, node1_at(8080))),
        "Drop stops it again"
    );
    delete(&c, &[open]);
    delete(&c, &heps);
    assert!(
        becomes(true, || tcp_from(&node1, fabric_8081)),
        "deleting the host endpoints opens the node again"
    );
}
