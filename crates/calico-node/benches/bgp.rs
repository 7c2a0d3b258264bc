//! How fast calico-node's BGP speaker takes a full table from a peer,
//! against BIRD taking the same routes from the same source in the same run
//! (issue 6).
//!
//! `sudo cargo bench -p calico-node --bench bgp` (root: namespaces; Debian
//! `bird2`; skips with a message otherwise). `BGP_BENCH_ROUNDS` (5),
//! `BGP_BENCH_TOGETHER=1` (see below), `BGP_BENCH_HOLD=65` (keeps the last
//! round's routes that long and reports the peak RSS meanwhile: the
//! periodic re-reads of the kernel's routes), `BGP_BENCH_TRACE=1` (route
//! count, RSS and CPU at every poll, on stderr).
//!
//! A source BIRD 2 in the cluster's fabric namespace (172.31.0.254, see
//! `tests/common`) originates 100,000 /32s of 100.64.0.0/10 (static
//! blackholes, outside the pool 10.84.0.0/16) and sends them over iBGP
//! (AS 64512) to two receivers:
//!
//! 1. calico-node on node 1 (`CALICO_NETWORKING_BACKEND=bird`, mesh off,
//!    a global BGPPeer `172.31.0.254`), which installs them with
//!    `proto 81`;
//! 2. a BIRD 2 in its own namespace on the same bridge (172.31.0.100,
//!    passive), whose `protocol kernel` exports everything it learns into
//!    that namespace's main table (`proto bird`).
//!
//! Both of the source's sessions start disabled. In each round each is
//! enabled in turn, the next only once the first receiver has everything
//! (BIRD first in odd rounds, calico-node first in even ones), then each is
//! disabled in turn and the routes' withdrawal timed the same way. One at a
//! time because the machine this runs on has two cores, and the source,
//! the receivers and the kernel's route inserts are all CPU-bound: enabled
//! together, each receiver's time depends on how the scheduler shares the
//! cores between them (and the source serialises its two exports), not on
//! the receiver. `BGP_BENCH_TOGETHER=1` enables (and disables) both at the
//! same moment instead, for comparison.
//!
//! Measured per receiver and round: when the session came up after
//! `enable` (the source's own Established time, to the millisecond), when
//! the first and when all 100,000 routes are in the receiver's kernel, when
//! all are gone after `disable`, and the CPU time the receiver used until
//! all were in. The compared time is the one from session up to all routes
//! in: how soon a session comes up is not the receiver's doing — the
//! source connects one second after `enable`, but calico-node's own retry
//! (every 5 s) sometimes comes first. Routes are counted every 50 ms from
//! `/proc/<receiver pid>/net/fib_triestat` (the main table's prefix
//! count, which the kernel computes without building a route dump; a dump
//! of 100,000 routes per poll would take a good part of a core from the
//! receivers); the exact `proto 81` / `proto bird` count is checked once
//! all are in. Memory: RSS before the first round (calico-node's agent also
//! runs Felix and the IPAM service), peak RSS (VmHWM) when the first round's
//! routes are all in, and after the last round — which takes in whatever
//! periodic work fell inside the rounds: calico-node's agent reads all the
//! kernel's routes every 30 s, in Felix and in the BGP programmer (see
//! `BGP_BENCH_HOLD`). Printed: medians, both receivers side by side with
//! the ratios calico-node / BIRD — goal ≤ 1.0 for the time after up and
//! the first round's RSS growth (peak − before) — then each round's times.
//!
//! The source runs with `graceful restart off`, so that `disable` takes
//! the routes away at once on both receivers (otherwise both keep them,
//! stale, for the restart time). BIRD 2.0 sends the last UPDATE of a full
//! table (and its End-of-RIB) only when something else wakes its event loop
//! — seen 0.5–3 s later, at the next connection attempt or timer — so the
//! bench talks to the source's control socket at every poll; that wake-up
//! serves both receivers alike.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use calico_testutil::{TestNetns, is_root, workspace_bin};
use common::Cluster;
use common::bird::Bird;

/// Prefixes the source originates.
const N: usize = 100_000;
const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: flat}\n\
                    spec: {cidr: 10.84.0.0/16, blockSize: 26, ipipMode: Never, vxlanMode: Never}\n";
const PEERING: &str = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
                       spec: {nodeToNodeMeshEnabled: false}\n---\n\
                       apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: source}\n\
                       spec: {peerIP: 172.31.0.254, asNumber: 64512}\n";
const RECEIVER_ADDR: &str = "172.31.0.100";
/// Longest wait for one receiver to have every route.
const TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(50);

/// A connection to BIRD's control socket, kept open.
struct Cli {
    stream: std::os::unix::net::UnixStream,
    buf: Vec<u8>,
}

impl Cli {
    fn connect(socket: &Path) -> Cli {
        let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut cli = Cli {
            stream,
            buf: Vec::new(),
        };
        cli.reply(); // the greeting
        cli
    }

    /// Reads one reply: up to a line `dddd text` (four digits, a space).
    fn reply(&mut self) -> String {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            let mut at = 0;
            for line in text.split_inclusive('\n') {
                at += line.len();
                let b = line.as_bytes();
                if line.ends_with('\n')
                    && b.len() > 4
                    && b[..4].iter().all(u8::is_ascii_digit)
                    && b[4] == b' '
                {
                    self.buf.drain(..at);
                    return text[..at].to_string();
                }
            }
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "bird closed its control socket");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        use std::io::Write;
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.reply()
    }
}

/// The receiving BIRD in its own namespace on the fabric's bridge. Field
/// order is drop order: the process goes before its namespace.
struct Receiver {
    bird: Bird,
    _dir: tempfile::TempDir,
    ns: TestNetns,
}

impl Receiver {
    fn start(c: &Cluster) -> Receiver {
        let ns = TestNetns::new("brcv");
        ns.exec(&[
            "sh",
            "-c",
            &format!(
                "ip link add eth0 type veth peer name rcv0 netns {f} && \
                 ip netns exec {f} ip link set rcv0 master br0 up && \
                 ip addr add {RECEIVER_ADDR}/24 dev eth0 && ip link set eth0 up",
                f = c.fabric.name()
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "router id {RECEIVER_ADDR};\n\
             protocol device {{}}\n\
             protocol kernel {{ ipv4 {{ import none; export all; }}; }}\n\
             protocol bgp upstream {{\n  local {RECEIVER_ADDR} as 64512;\n  \
               neighbor 172.31.0.254 as 64512;\n  passive on;\n  direct;\n  \
               ipv4 {{ import all; export none; }};\n}}\n"
        );
        let bird = Bird::start(ns.name(), dir.path(), "receiver", &config);
        Receiver {
            bird,
            _dir: dir,
            ns,
        }
    }
}

/// The source's configuration: `N` static /32s, both sessions disabled.
fn source_config() -> String {
    let mut s = String::with_capacity(N * 40 + 1024);
    s.push_str("timeformat protocol \"%s.%3f\";\nrouter id 172.31.0.254;\nprotocol device {}\nprotocol static origin {\n  ipv4;\n");
    let base = u32::from(Ipv4Addr::new(100, 64, 0, 0));
    for i in 0..N as u32 {
        s.push_str(&format!(
            "  route {}/32 blackhole;\n",
            Ipv4Addr::from(base + i)
        ));
    }
    s.push_str(&format!(
        "}}\n\
         template bgp feed {{\n  local 172.31.0.254 as 64512;\n  connect delay time 0;\n  \
           graceful restart off;\n  disabled yes;\n  ipv4 {{ import none; export all; }};\n}}\n\
         protocol bgp to_calico from feed {{ neighbor 172.31.0.1 as 64512; }}\n\
         protocol bgp to_bird from feed {{ neighbor {RECEIVER_ADDR} as 64512; }}\n"
    ));
    s
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
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

/// User and system CPU time of `pid` (all its threads; the kernel's work
/// on its netlink requests is system time).
fn cpu_time(pid: u32) -> [Duration; 2] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces): state is field 3,
    // utime and stime fields 14 and 15, in USER_HZ (100 on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut f = rest
        .split_whitespace()
        .skip(11)
        .map(|v| Duration::from_millis(v.parse::<u64>().unwrap_or(0) * 10));
    [f.next().unwrap_or_default(), f.next().unwrap_or_default()]
}

fn cpu_since(pid: u32, before: [Duration; 2]) -> [Duration; 2] {
    let now = cpu_time(pid);
    [
        now[0].saturating_sub(before[0]),
        now[1].saturating_sub(before[1]),
    ]
}

fn cpu_text(c: [Duration; 2]) -> String {
    format!("{:.2}+{:.2} s", c[0].as_secs_f64(), c[1].as_secs_f64())
}

/// Prefixes in the main table of `pid`'s network namespace.
fn fib_prefixes(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/fib_triestat")).unwrap_or_default();
    text.split("Main:")
        .nth(1)
        .and_then(|main| {
            main.lines()
                .find_map(|l| l.trim().strip_prefix("Prefixes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What one round measured for one receiver; times from `enable`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Until the source has the session established.
    up: Duration,
    /// Until the first / the last route is in the kernel.
    first: Duration,
    all: Duration,
    /// From `disable` until every route has left the kernel.
    gone: Duration,
    cpu: [Duration; 2],
    /// The source's, from `enable` until the last receiver had all.
    source_cpu: [Duration; 2],
}

/// One receiver: what it is, how to count its routes exactly, and what was
/// measured.
struct Side {
    name: &'static str,
    pid: u32,
    netns: String,
    proto: &'static str,
    /// The source's protocol that feeds it.
    session: &'static str,
    /// Main-table prefixes without the source's routes.
    baseline: u64,
    /// RSS before the first round, peak RSS after it and after the last.
    rss_before: u64,
    hwm_first: u64,
    hwm_last: u64,
    /// Peak RSS while holding all routes for some seconds.
    hwm_hold: Option<(u64, u64)>,
    rounds: Vec<Sample>,
}

impl Side {
    fn new(
        name: &'static str,
        pid: u32,
        netns: &str,
        proto: &'static str,
        session: &'static str,
    ) -> Side {
        Side {
            name,
            pid,
            netns: netns.to_string(),
            proto,
            session,
            baseline: fib_prefixes(pid),
            rss_before: status_kib(pid, "VmRSS:"),
            hwm_first: 0,
            hwm_last: 0,
            hwm_hold: None,
            rounds: Vec::new(),
        }
    }

    fn exact_count(&self) -> usize {
        let out = Command::new("ip")
            .args(["-n", &self.netns, "route", "show", "proto", self.proto])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn routes(&self) -> u64 {
        fib_prefixes(self.pid).saturating_sub(self.baseline)
    }

    /// The median over the rounds of `f`.
    fn median(&self, f: impl Fn(&Sample) -> Duration) -> Duration {
        let mut v: Vec<Duration> = self.rounds.iter().map(f).collect();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

/// When the source's session `name` became Established, as seconds since
/// the epoch (the source prints protocol times as `%s.%3f`).
fn established_at(cli: &mut Cli, name: &str) -> Option<f64> {
    let out = cli.cmd(&format!("show protocols {name}"));
    out.lines()
        .filter_map(|l| l.get(5..))
        .map(str::split_whitespace)
        .find_map(|mut f| {
            (f.next() == Some(name)).then_some(())?;
            let since = f.nth(3)?;
            (f.next() == Some("Established"))
                .then(|| since.parse().ok())
                .flatten()
        })
}

fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn trace(t: Duration, s: &Side, n: u64, cpu_before: [Duration; 2]) {
    if std::env::var_os("BGP_BENCH_TRACE").is_some_and(|v| v == "1") {
        eprintln!(
            "{:>8.3} s {:<12} {n:>7} routes, RSS {}, CPU {}",
            t.as_secs_f64(),
            s.name,
            mib(status_kib(s.pid, "VmRSS:")),
            cpu_text(cpu_since(s.pid, cpu_before))
        );
    }
}

/// Enables the sessions of `sides` (at once) and polls until each has all
/// the routes; adds a sample to each.
fn announce(cli: &mut Cli, source: u32, sides: &mut [&mut Side]) {
    let source_before = cpu_time(source);
    let cpu_before: Vec<[Duration; 2]> = sides.iter().map(|s| cpu_time(s.pid)).collect();
    let mut cpu = vec![[Duration::ZERO; 2]; sides.len()];
    let mut hwm = vec![0; sides.len()];
    let mut up: Vec<Option<Duration>> = vec![None; sides.len()];
    let mut first: Vec<Option<Duration>> = vec![None; sides.len()];
    let mut all: Vec<Option<Duration>> = vec![None; sides.len()];
    let start = Instant::now();
    let start_epoch = epoch_secs();
    for s in sides.iter() {
        let out = cli.cmd(&format!("enable {}", s.session));
        assert!(out.contains("enabled"), "enable {}: {out}", s.session);
    }
    loop {
        for (i, s) in sides.iter().enumerate() {
            if up[i].is_none()
                && let Some(at) = established_at(cli, s.session)
            {
                up[i] = Some(Duration::from_secs_f64((at - start_epoch).max(0.0)));
            }
            if all[i].is_some() {
                continue;
            }
            let n = s.routes();
            let t = start.elapsed();
            trace(t, s, n, cpu_before[i]);
            if n > 0 && first[i].is_none() {
                first[i] = Some(t);
            }
            if n >= N as u64 {
                all[i] = Some(t);
                cpu[i] = cpu_since(s.pid, cpu_before[i]);
                hwm[i] = status_kib(s.pid, "VmHWM:");
            } else {
                assert!(
                    t < TIMEOUT,
                    "{}: {n} of {N} routes after {t:?} (source: {})",
                    s.name,
                    cli.cmd(&format!("show protocols all {}", s.session))
                );
            }
        }
        if all.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(POLL);
        // Wakes the source's event loop (see the top) if nothing above did.
        cli.cmd("show status");
    }
    let source_cpu = cpu_since(source, source_before);
    for (i, s) in sides.iter_mut().enumerate() {
        let n = s.exact_count();
        assert_eq!(n, N, "{}: {n} routes with proto {}", s.name, s.proto);
        if s.rounds.is_empty() {
            s.hwm_first = hwm[i];
        }
        s.hwm_last = hwm[i];
        s.rounds.push(Sample {
            up: up[i].unwrap_or_else(|| panic!("{}: no established time", s.name)),
            first: first[i].unwrap_or_default(),
            all: all[i].unwrap_or_default(),
            gone: Duration::ZERO,
            cpu: cpu[i],
            source_cpu,
        });
    }
}

/// Disables the sessions of `sides` (at once) and polls until each has
/// none of the routes left; completes their last samples.
fn withdraw(cli: &mut Cli, sides: &mut [&mut Side]) {
    let start = Instant::now();
    for s in sides.iter() {
        let out = cli.cmd(&format!("disable {}", s.session));
        assert!(out.contains("disabled"), "disable {}: {out}", s.session);
    }
    let mut gone: Vec<Option<Duration>> = vec![None; sides.len()];
    while gone.iter().any(Option::is_none) {
        for (i, s) in sides.iter().enumerate() {
            if gone[i].is_some() {
                continue;
            }
            let n = s.routes();
            let t = start.elapsed();
            trace(t, s, n, [Duration::ZERO; 2]);
            if n == 0 {
                gone[i] = Some(t);
            } else {
                assert!(t < TIMEOUT, "{}: {n} routes left after {t:?}", s.name);
            }
        }
        std::thread::sleep(POLL);
        cli.cmd("show status");
    }
    for (i, s) in sides.iter_mut().enumerate() {
        if let Some(last) = s.rounds.last_mut() {
            last.gone = gone[i].unwrap_or_default();
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn main() {
    if !is_root() {
        eprintln!("skipping: needs root (network namespaces)");
        return;
    }
    if Command::new("bird").arg("--version").output().is_err()
        || Command::new("birdc").arg("--version").output().is_err()
    {
        eprintln!("skipping: needs BIRD 2 (Debian bird2: bird, birdc)");
        return;
    }
    if !workspace_bin("calicoctl").exists() {
        eprintln!("skipping: needs calicoctl (cargo build --release -p calicoctl)");
        return;
    }
    let together = std::env::var_os("BGP_BENCH_TOGETHER").is_some_and(|v| v == "1");
    let rounds: usize = std::env::var("BGP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let c = Cluster::with_backend(1, POOL, "bird");
    let f = c.dir.path().join("peering.yaml");
    std::fs::write(&f, PEERING).unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let receiver = Receiver::start(&c);
    let source = Bird::start(c.fabric.name(), c.dir.path(), "source", &source_config());
    let count = source.cmd(&["show", "route", "count"]);
    assert!(
        count.contains(&format!("{N} of {N} routes")),
        "the source has not got its {N} routes: {count}"
    );
    // calico-node has its peer (connecting, refused while the source's
    // session is disabled).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = c.node_cmd(0, &["-bird-ready"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("172.31.0.254") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "calico-node never configured its peer: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the agent settle (Felix's pass after the BGP resources changed).
    std::thread::sleep(Duration::from_secs(2));
    let agent = c.agents.borrow()[0].1.id();
    let mut calico = Side::new(
        "calico-node",
        agent,
        c.nodes[0].ns.name(),
        "81",
        "to_calico",
    );
    let mut bird = Side::new(
        "BIRD",
        receiver.bird.pid(),
        receiver.ns.name(),
        "bird",
        "to_bird",
    );
    let hold: u64 = std::env::var("BGP_BENCH_HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut cli = Cli::connect(source.socket());
    for round in 0..rounds {
        let last = round + 1 == rounds;
        if together {
            announce(&mut cli, source.pid(), &mut [&mut calico, &mut bird]);
            if last && hold > 0 {
                hold_routes(&mut cli, hold, &mut [&mut calico, &mut bird]);
            }
            withdraw(&mut cli, &mut [&mut calico, &mut bird]);
        } else {
            // BIRD first in even rounds, calico-node first in odd ones.
            let (a, b) = if round % 2 == 0 {
                (&mut bird, &mut calico)
            } else {
                (&mut calico, &mut bird)
            };
            announce(&mut cli, source.pid(), &mut [&mut *a]);
            announce(&mut cli, source.pid(), &mut [&mut *b]);
            if last && hold > 0 {
                hold_routes(&mut cli, hold, &mut [&mut *a, &mut *b]);
            }
            withdraw(&mut cli, &mut [&mut *a]);
            withdraw(&mut cli, &mut [&mut *b]);
        }
    }
    for s in [&mut calico, &mut bird] {
        s.hwm_last = status_kib(s.pid, "VmHWM:");
    }
    report(&calico, &bird, together);
}

/// Keeps the routes `secs` seconds (periodic work: calico-node's agent
/// re-reads the kernel's routes every 30 s, Felix and the BGP programmer
/// each; BIRD scans its kernel table every 60 s) and records each
/// receiver's peak RSS meanwhile (VmHWM reset first).
fn hold_routes(cli: &mut Cli, secs: u64, sides: &mut [&mut Side]) {
    for s in sides.iter() {
        std::fs::write(format!("/proc/{}/clear_refs", s.pid), "5").unwrap();
    }
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        cli.cmd("show status");
    }
    for s in sides.iter_mut() {
        assert_eq!(s.routes(), N as u64, "{}: routes lost while held", s.name);
        s.hwm_hold = Some((secs, status_kib(s.pid, "VmHWM:")));
    }
}

fn report(calico: &Side, bird: &Side, together: bool) {
    println!(
        "{N} prefixes from a BIRD peer, {} rounds ({}); medians:",
        calico.rounds.len(),
        if together {
            "both sessions enabled at once"
        } else {
            "one session at a time"
        }
    );
    println!(
        "{:<36}{:>13}{:>13}{:>8}",
        "", "calico-node", "BIRD", "ratio"
    );
    let row = |what: &str, a: String, b: String, r: String| {
        println!("{what:<36}{a:>13}{b:>13}{r:>8}");
    };
    let time_row = |what: &str, f: &dyn Fn(&Sample) -> Duration, with_ratio: bool| {
        let (a, b) = (calico.median(f), bird.median(f));
        let r = if with_ratio {
            ratio(a.as_secs_f64(), b.as_secs_f64())
        } else {
            String::new()
        };
        row(what, secs(a), secs(b), r);
    };
    time_row("session up, after enable", &|s| s.up, false);
    time_row(
        "first route in kernel, after up",
        &|s| s.first.saturating_sub(s.up),
        false,
    );
    time_row(
        "all routes in kernel, after up",
        &|s| s.all.saturating_sub(s.up),
        true,
    );
    time_row("all routes in kernel, after enable", &|s| s.all, true);
    time_row("all routes gone, after disable", &|s| s.gone, true);
    let (cu, bu) = (calico.median(|s| s.cpu[0]), bird.median(|s| s.cpu[0]));
    let (cs, bs) = (calico.median(|s| s.cpu[1]), bird.median(|s| s.cpu[1]));
    row(
        "CPU time to all in, user+system",
        cpu_text([cu, cs]),
        cpu_text([bu, bs]),
        ratio((cu + cs).as_secs_f64(), (bu + bs).as_secs_f64()),
    );
    let (cu, bu) = (
        calico.median(|s| s.source_cpu[0]),
        bird.median(|s| s.source_cpu[0]),
    );
    let (cs, bs) = (
        calico.median(|s| s.source_cpu[1]),
        bird.median(|s| s.source_cpu[1]),
    );
    row(
        "the source's CPU time meanwhile",
        cpu_text([cu, cs]),
        cpu_text([bu, bs]),
        String::new(),
    );
    row(
        "RSS before",
        mib(calico.rss_before),
        mib(bird.rss_before),
        String::new(),
    );
    let growth = |hwm: u64, s: &Side| hwm.saturating_sub(s.rss_before);
    let mut peaks = vec![
        ("first round".to_string(), calico.hwm_first, bird.hwm_first),
        ("all rounds".to_string(), calico.hwm_last, bird.hwm_last),
    ];
    if let (Some((secs, c)), Some((_, b))) = (calico.hwm_hold, bird.hwm_hold) {
        peaks.push((format!("holding them {secs} s"), c, b));
    }
    for (what, c, b) in peaks {
        row(
            &format!("peak RSS (VmHWM), {what}"),
            mib(c),
            mib(b),
            String::new(),
        );
        let (gc, gb) = (growth(c, calico), growth(b, bird));
        row(
            &format!("RSS growth, {what}"),
            mib(gc),
            mib(gb),
            ratio(gc as f64, gb as f64),
        );
    }
    println!("goal: ratios <= 1.0 (time after up, RSS growth)");
    for (i, (c, b)) in calico.rounds.iter().zip(&bird.rounds).enumerate() {
        println!(
            "  round {}: after up {} / {}, gone {} / {}",
            i + 1,
            secs(c.all.saturating_sub(c.up)),
            secs(b.all.saturating_sub(b.up)),
            secs(c.gone),
            secs(b.gone)
        );
    }
}
