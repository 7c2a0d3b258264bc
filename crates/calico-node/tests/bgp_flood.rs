//! The BGP port under a connection flood from an address that is no peer
//! (a cluster of network namespaces, see `common`): a real peer that
//! restarts meanwhile is Established again, every connection of the flood
//! is closed, and the agent's log holds a handful of refusals and one
//! count of the rest rather than a line per connection.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use calico_testutil::require_root;
use common::Cluster;
use common::peers::{GoBgp, until};

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: flat}\n\
                    spec: {cidr: 10.84.0.0/16, blockSize: 26, ipipMode: Never, vxlanMode: Never}\n";

/// Connections the flood opens, all at once.
const FLOOD: usize = 1000;
/// The flood's address: on the fabric, no peer of the node.
const FLOODER: &str = "172.31.0.200";

/// GoBGP as AS 65001, peering with node 1; it does not listen (`port =
/// -1`), so every session is one GoBGP opened to the node's listener.
const GOBGP: &str = "[global.config]\n  as = 65001\n  router-id = \"172.31.0.254\"\n  port = -1\n\
                     [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"172.31.0.1\"\n    peer-as = 64512\n\
                     \x20 [neighbors.timers.config]\n    connect-retry = 1\n";

/// How the flood's connections ended.
#[derive(Debug, Default)]
struct Outcome {
    /// Accepted, then closed by the node (EOF or reset) without a byte.
    closed: usize,
    /// The node sent something (it must not: nothing is said to a non-peer).
    answered: usize,
    /// Still open after 30 s.
    held: usize,
    /// Never connected within 20 s.
    unconnected: usize,
}

/// Opens `FLOOD` connections from `FLOODER` to the node's BGP port, all at
/// once, and waits for each to be closed.
fn flood(fabric: &Path) -> Outcome {
    let ns = calico_dataplane::NetNs::open(fabric).unwrap();
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..FLOOD {
                set.spawn(async {
                    let to: SocketAddr = "172.31.0.1:179".parse().unwrap();
                    let from: SocketAddr = format!("{FLOODER}:0").parse().unwrap();
                    let s = tokio::net::TcpSocket::new_v4().unwrap();
                    s.bind(from).unwrap();
                    let Ok(Ok(c)) =
                        tokio::time::timeout(Duration::from_secs(20), s.connect(to)).await
                    else {
                        return 3;
                    };
                    let read = async {
                        let mut b = [0u8; 64];
                        loop {
                            if c.readable().await.is_err() {
                                return 0;
                            }
                            match c.try_read(&mut b) {
                                Ok(0) => return 0,
                                Ok(_) => return 1,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => return 0,
                            }
                        }
                    };
                    tokio::time::timeout(Duration::from_secs(30), read)
                        .await
                        .unwrap_or(2)
                });
            }
            let mut o = Outcome::default();
            while let Some(r) = set.join_next().await {
                match r.unwrap() {
                    0 => o.closed += 1,
                    1 => o.answered += 1,
                    2 => o.held += 1,
                    _ => o.unconnected += 1,
                }
            }
            o
        })
    })
    .unwrap()
}

fn established(g: &GoBgp) -> bool {
    g.try_cmd(&["neighbor"]).is_some_and(|n| {
        n.lines()
            .any(|l| l.contains("172.31.0.1") && l.contains("Establ"))
    })
}

/// A thousand connections from a non-peer while GoBGP restarts: GoBGP's
/// session (which only GoBGP can open) is Established again, the flood's
/// connections are all closed unanswered, the agent's peak memory grows by
/// at most 32 MiB, and the log has at most a few refusal lines plus the
/// count of those not logged.
#[test]
fn a_connection_flood_from_a_non_peer_neither_starves_a_peer_nor_floods_the_log() {
    require_root!();
    if Command::new("gobgpd").arg("--version").output().is_err() {
        panic!("gobgpd (Debian gobgpd) is not installed; .ci/run installs it");
    }
    let c = Cluster::with_backend(1, POOL, "bird");
    c.fabric
        .exec(&["ip", "addr", "add", &format!("{FLOODER}/24"), "dev", "br0"]);
    let log = c.dir.path().join("agent.log");
    c.kill_agent(0);
    c.start_agent_logging_to(0, &log);
    let f = c.dir.path().join("peer.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 65001}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let g = GoBgp::start(&c, GOBGP);
    until("the session established in GoBGP", || established(&g));
    let t = Instant::now();
    let g = GoBgp::start_after(g, &c, GOBGP);
    let first = t.elapsed();
    eprintln!("GoBGP restarted without a flood: Established after {first:?}");

    // The agent's peak memory (VmHWM, KiB) before and after the flood.
    let pid = c
        .agents
        .borrow()
        .iter()
        .find(|(i, _)| *i == 0)
        .map(|(_, child)| child.id())
        .unwrap();
    let hwm = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    let hwm_before = hwm();

    // The flood, then GoBGP restarts while it is under way.
    let fabric = c.fabric.path().to_path_buf();
    let flooder = std::thread::spawn(move || flood(&fabric));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let g = GoBgp::start_after(g, &c, GOBGP);
    let took = t.elapsed();
    eprintln!("GoBGP restarted during a flood of {FLOOD} connections: Established after {took:?}");
    let o = flooder.join().unwrap();
    eprintln!("the flood: {o:?}");
    // Stated bound: the flood adds at most 32 MiB to the agent's peak.
    let hwm_after = hwm();
    eprintln!("agent VmHWM {hwm_before} -> {hwm_after} KiB");
    assert!(
        hwm_after <= hwm_before + 32 * 1024,
        "the flood grew the agent from {hwm_before} to {hwm_after} KiB"
    );
    assert_eq!(
        o.closed, FLOOD,
        "every flood connection closed unanswered: {o:?}"
    );
    assert!(established(&g));

    // The log: a handful of refusals, then a count of the others.
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    until("the count of refusals not logged", || {
        lines()
            .lines()
            .any(|l| l.contains("not a peer") && l.contains("suppressed"))
    });
    let text = lines();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("not a peer") && !l.contains("suppressed"))
        .collect();
    eprintln!(
        "{} refusal lines, then: {:?}",
        refusals.len(),
        text.lines().find(|l| l.contains("suppressed"))
    );
    assert!(
        (1..=10).contains(&refusals.len()),
        "{} refusal lines for {FLOOD} connections:\n{}",
        refusals.len(),
        refusals.join("\n")
    );
}

impl GoBgp {
    /// Stops `g` and starts GoBGP again with `config`; returns once its
    /// session is Established again (at most 60 s).
    fn start_after(g: GoBgp, c: &Cluster, config: &str) -> GoBgp {
        drop(g);
        let g = GoBgp::start(c, config);
        let t = Instant::now();
        while !established(&g) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "GoBGP's session not Established again within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        g
    }
}
