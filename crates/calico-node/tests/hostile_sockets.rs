//! Hostile clients on the agent's unix sockets (issue 17 point 4): the IPAM
//! service (`CALICO_IPAM_SOCKET`) and the control socket, against a real
//! calico-node in its own network namespace with a real etcd inside it.
//!
//! On each socket: a 64 MiB line without a newline, a client sending a
//! byte a second, connections that send nothing, half a request then a
//! shut-down write, malformed and deeply nested JSON, and 1,000 clients at
//! once (half idle, half malformed). Meanwhile the real clients are
//! answered: a `calico-ipam` ADD through the service (the plugin runs
//! in an empty namespace, where the etcd it names cannot be reached, so it
//! succeeds only if the service answers it) and a `-felix-ready` probe.
//!
//! Memory bound: the agent's peak RSS (VmHWM) grows by less than 32 MiB
//! over the whole test (a request line is read up to 16 KiB on the IPAM
//! socket, 256 bytes on the control socket); VmRSS and VmHWM are printed
//! after each step.
//!
//! Logs: each kind of abuse is logged in one line per socket, not one per
//! connection (the agent's stderr is read at the end).

#![allow(clippy::unwrap_used)] // the shared harness (node_host) unwraps: a failed unwrap is a failed test

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_testutil::{TestNetns, require_root, workspace_bin};
use serde_json::{Value, json};

#[allow(dead_code)] // node.rs uses the rest of the harness
mod node_host;
use node_host::{Agent, BIN, Host};

/// The stated bound on the agent's peak RSS growth, in KiB.
const BOUND_KIB: u64 = 32 * 1024;

/// A field of `/proc/<pid>/status` in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Prints the agent's VmRSS and VmHWM after `step`, and checks the bound
/// against `hwm0` (the peak once started); returns VmHWM.
fn memory(pid: u32, step: &str, hwm0: u64) -> u64 {
    let (rss, hwm) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    println!("after {step}: agent VmRSS {rss} KiB, VmHWM {hwm} KiB");
    assert!(
        hwm <= hwm0.saturating_add(BOUND_KIB),
        "{step}: VmHWM grew from {hwm0} to {hwm} KiB (bound {BOUND_KIB})"
    );
    hwm
}

/// This process's soft limit on open files, raised to the hard limit
/// first (as Go programs do at start): the agent, started after, inherits
/// it.
fn open_files_limit() -> u64 {
    let read = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut n = line
            .split_whitespace()
            .filter_map(|w| w.parse::<u64>().ok());
        Some((n.next()?, n.next().unwrap_or(u64::MAX)))
    };
    let Some((soft, hard)) = read() else {
        return 1024;
    };
    if soft < hard {
        let _ = Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    read().map_or(soft, |(soft, _)| soft)
}

fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Sends `raw`, shuts down writing, reads the answer to the end.
fn exchange(path: &Path, raw: &[u8]) -> String {
    let mut s = connect(path);
    s.write_all(raw).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the server closes `s` within `limit` (a guard against a hung
/// server, not a timing assertion); what it sent meanwhile.
fn closed_within(s: &mut UnixStream, limit: Duration) -> (bool, String) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while started.elapsed() < limit {
        match s.read(&mut b) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (true, String::from_utf8_lossy(&got).into_owned()),
        }
    }
    (false, String::from_utf8_lossy(&got).into_owned())
}

/// Sends 64 MiB without a newline (until the server stops taking them);
/// the KiB sent and the answer.
fn oversized(path: &Path) -> (usize, String) {
    let mut s = connect(path);
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let (_, answer) = closed_within(&mut s, Duration::from_secs(30));
    (sent / 1024, answer)
}

/// A client sending `line` a byte a second, from a thread: whether the
/// server cut it off within 30 s, and the bytes it sent.
fn slow(path: &Path, line: &'static [u8]) -> std::thread::JoinHandle<(bool, usize)> {
    let mut s = connect(path);
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(30) {
            let byte = line.get(sent % line.len()).copied().unwrap_or(b'a');
            if s.write_all(&[byte]).is_err() {
                return (true, sent);
            }
            sent += 1;
            let mut b = [0u8; 256];
            match s.read(&mut b) {
                Ok(0) => return (true, sent),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return (true, sent),
            }
        }
        (false, sent)
    })
}

/// The real clients of the sockets.
struct Clients<'a> {
    h: &'a Host,
    /// An empty namespace, where the plugin runs: nothing listens there.
    empty: TestNetns,
    env: &'a [(&'a str, &'a str)],
    etcd: String,
    n: usize,
}

impl Clients<'_> {
    fn ipam_sock(&self) -> PathBuf {
        self.h.dir.path().join("ipam.sock")
    }

    fn ctl_sock(&self) -> PathBuf {
        self.h.state().join("calico-node.ctl")
    }

    /// A `calico-ipam` ADD, run in an empty namespace where the etcd it
    /// names cannot be reached: only the service can answer it. Its
    /// addresses.
    fn ipam_add(&mut self) -> Vec<String> {
        self.n += 1;
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "hostile",
            "type": "calico-ipam",
            "nodename": "node-h",
            "datastore_type": "etcdv3",
            "etcd_endpoints": self.etcd,
            "ipam_socket": self.ipam_sock(),
            "ipam_lock_file": self.h.dir.path().join("ipam.lock"),
            "ipam": {"type": "calico-ipam"},
        });
        let bin = workspace_bin("calico-ipam");
        assert!(
            bin.exists(),
            "{} missing: cargo build -p calico-cni",
            bin.display()
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.empty.name()])
            .arg(bin)
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", format!("hostile-{}", self.n))
            .env("CNI_NETNS", "/var/run/netns/none")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/nonexistent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert!(
            out.status.success(),
            "calico-ipam ADD: {r} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        r["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ip| ip["address"].as_str().map(str::to_string))
            .collect()
    }

    /// `calico-node -felix-ready`, as the kubelet runs it.
    fn probe(&self) -> Result<String, String> {
        let out = self.h.node(&["-felix-ready"], self.env);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(node_host::stderr(&out))
        }
    }

    /// Both real clients are answered.
    fn answered(&mut self, step: &str) {
        let ips = self.ipam_add();
        assert_eq!(ips.len(), 1, "{step}: {ips:?}");
        assert!(ips[0].starts_with("10.84."), "{step}: {ips:?}");
        let p = self.probe();
        assert!(p.is_ok(), "{step}: probe: {p:?}");
        println!("{step}: calico-ipam ADD got {ips:?} from the service; probe answered");
    }
}

fn nested(depth: usize) -> Vec<u8> {
    let mut line = br#"{"op":"release","store":"x","handle":"h","x":"#.to_vec();
    line.extend(std::iter::repeat_n(b'[', depth));
    line.extend(std::iter::repeat_n(b']', depth));
    line.extend_from_slice(b"}\n");
    line
}

#[test]
fn hostile_clients_on_the_ipam_and_control_sockets() {
    require_root!();
    println!("open files limit: {}", open_files_limit());
    let h = Host::new(true);
    let etcd = h
        .store
        .iter()
        .find(|(k, _)| k == "ETCD_ENDPOINTS")
        .map(|(_, v)| v.clone())
        .unwrap();
    let env = [
        ("NODENAME", "node-h"),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_CIDR", "10.84.0.0/16"),
    ];
    let log = h.dir.path().join("agent.log");
    let agent = Agent(
        h.cmd(BIN, &[], &env)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = agent.0.id();
    let mut c = Clients {
        h: &h,
        empty: TestNetns::new("hsc"),
        env: &env,
        etcd,
        n: 0,
    };
    let started = Instant::now();
    while c.probe().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "agent never ready: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.answered("start");
    let hwm0 = memory(pid, "start", u64::MAX);
    let (ipam, ctl) = (c.ipam_sock(), c.ctl_sock());

    // Oversized: 64 MiB without a newline.
    let mut answers = Vec::new();
    for (sock, refusal) in [
        (&ipam, "bad request: longer than 16384 bytes"),
        (&ctl, "400\nrequest longer than 256 bytes"),
    ] {
        let (kib, answer) = oversized(sock);
        println!(
            "{}: sent {kib} KiB without a newline; answer {answer:?}",
            sock.display()
        );
        answers.push((answer, refusal));
    }
    memory(pid, "64 MiB lines", hwm0);
    for (answer, refusal) in answers {
        assert!(answer.is_empty() || answer.contains(refusal), "{answer}");
    }
    c.answered("after 64 MiB lines");

    // Slow, idle and half-closed clients, while the real ones ask.
    let slow_ipam = slow(&ipam, br#"{"op":"release","store":"x","handle":"h"}"#);
    let slow_ctl = slow(&ctl, b"/readiness");
    let mut idle: Vec<UnixStream> = [&ipam, &ctl, &ipam, &ctl]
        .iter()
        .map(|p| connect(p))
        .collect();
    let mut half: Vec<UnixStream> = Vec::new();
    for (sock, part) in [(&ipam, &br#"{"op":"rele"#[..]), (&ctl, b"/readi")] {
        let mut s = connect(sock);
        s.write_all(part).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        half.push(s);
    }
    c.answered("with slow, idle and half-closed clients connected");
    for (what, t) in [("IPAM", slow_ipam), ("control", slow_ctl)] {
        let (cut, sent) = t.join().unwrap();
        println!("{what}: a byte a second: cut off {cut} after {sent} bytes");
        assert!(
            cut,
            "{what}: a client sending a byte a second still connected after 30 s"
        );
    }
    for s in &mut idle {
        let (closed, got) = closed_within(s, Duration::from_secs(30));
        assert!(closed, "an idle client still connected after 30 s");
        assert!(got.is_empty(), "{got}");
    }
    let answers: Vec<String> = half
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(30)).1)
        .collect();
    println!("half requests, then shut down: {answers:?}");
    assert!(
        answers[0].contains("bad request: EOF while parsing"),
        "{}",
        answers[0]
    );
    assert!(answers[1].starts_with("404\n"), "{}", answers[1]);
    memory(pid, "slow, idle and half-closed clients", hwm0);

    // Malformed and nested.
    for (raw, says) in [
        (&b"not json\n"[..], "bad request: expected"),
        (b"{\"op\":\"explode\"}\n", "bad request: unknown variant"),
        (b"\xff\xfe\n", "bad request:"),
        (&nested(8000), "recursion limit exceeded"),
        (&nested(100_000), "longer than 16384 bytes"),
    ] {
        let r = exchange(&ipam, raw);
        assert!(r.contains(says), "{r}");
    }
    for raw in [&b"\xff\xfe\n"[..], b"GET / HTTP/1.1\r\n\r\n", b"\n"] {
        let r = exchange(&ctl, raw);
        assert!(r.starts_with("404\n"), "{r}");
    }
    memory(pid, "malformed and nested requests", hwm0);
    c.answered("after malformed requests");

    // 1,000 clients at once on each socket: half idle, half malformed
    // (fewer if this process's file descriptor limit is too low: it keeps
    // 200 for itself).
    let per_socket = (open_files_limit().saturating_sub(200) / 2).min(1000);
    let mut crowd = Vec::new();
    for i in 0..per_socket {
        for sock in [&ipam, &ctl] {
            let mut s = UnixStream::connect(sock).unwrap();
            if i % 2 == 0 {
                let _ = s.write_all(b"{not json\n");
            }
            crowd.push(s);
        }
    }
    println!("{per_socket} clients connected to each socket");
    let hwm_crowd = memory(pid, "the crowd connected", hwm0);
    c.answered("with the crowd connected");
    let mut closed = 0;
    for s in &mut crowd {
        if closed_within(s, Duration::from_secs(30)).0 {
            closed += 1;
        }
    }
    assert_eq!(closed, crowd.len(), "clients left connected");
    drop(crowd);
    c.answered("after the crowd");
    let hwm1 = memory(pid, "all", hwm0);
    println!(
        "agent VmHWM {hwm0} -> {hwm1} KiB (growth {} KiB, bound {BOUND_KIB}; {hwm_crowd} with the crowd)",
        hwm1 - hwm0
    );

    // One line per kind of abuse and socket, not one per connection.
    drop(agent);
    let text = std::fs::read_to_string(&log).unwrap();
    let abuse: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("IPAM service: ") || l.contains("control socket: "))
        .collect();
    for l in &abuse {
        println!("log: {l}");
    }
    for server in ["IPAM service", "control socket"] {
        for kind in [
            "sent a request over the size limit",
            "sent no whole request in time",
            "sent a malformed request",
        ] {
            let first = format!("{server}: a client {kind}");
            let n = abuse
                .iter()
                .filter(|l| l.contains(&first) && l.contains("more such clients"))
                .count();
            assert_eq!(n, 1, "{first}: {n} lines");
        }
    }
    assert!(abuse.len() <= 16, "{} abuse lines", abuse.len());
}
