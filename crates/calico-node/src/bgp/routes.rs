//! Learned routes into the kernel: the best path per prefix
//! ([`desired_routes`], pure) installed in the main table with protocol
//! [`PROTO_BGP`] by the programmer thread ([`program_loop`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::speaker::{Log, Path, Shared, SharedState, lock};

/// The routes the kernel should have: per learned prefix the best path
/// (highest LOCAL_PREF, shortest AS path, lowest peer address), leaving out
/// our own exports and prefixes inside encapsulated pools (the Felix part
/// programs those through the tunnels).
pub fn desired_routes(s: &SharedState, now: Instant) -> BTreeMap<IpNet, IpAddr> {
    let mut best: BTreeMap<IpNet, (&Path, IpAddr)> = BTreeMap::new();
    for (peer, l) in &s.learned {
        let expired = l.stale_until.is_some_and(|t| t <= now);
        for (prefix, path) in &l.routes {
            if expired && l.stale.contains(prefix) {
                continue;
            }
            if s.exports.contains(prefix)
                || s.pools
                    .iter()
                    .any(|p| p.encapsulated && p.cidr.contains(prefix))
            {
                continue;
            }
            let better = match best.get(prefix) {
                None => true,
                Some((b, bpeer)) => {
                    (std::cmp::Reverse(path.local_pref), path.as_path_len, *peer)
                        < (std::cmp::Reverse(b.local_pref), b.as_path_len, *bpeer)
                }
            };
            if better {
                best.insert(*prefix, (path, *peer));
            }
        }
    }
    best.into_iter()
        .map(|(prefix, (path, _))| (prefix, path.next_hop))
        .collect()
}

/// Keeps the kernel's BGP routes (protocol [`PROTO_BGP`], main table) equal
/// to [`desired_routes`]; runs until `stop`.
pub fn program_loop(shared: Arc<Shared>, stop: Arc<std::sync::atomic::AtomicBool>, log: Log) {
    let mut seen = u64::MAX;
    let mut problems_logged = BTreeSet::new();
    let started = Instant::now();
    // Routes of an earlier run stay until every peer has re-sent its
    // routes (End-of-RIB) or the restart time passes: a restart does not
    // flap them.
    let keep_old_until = started + Duration::from_secs(120);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let desired = {
            let mut st = lock(&shared.state);
            if st.generation == seen {
                // Wake at least every second: stale routes expire.
                st = match shared.changed.wait_timeout(st, Duration::from_secs(1)) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            seen = st.generation;
            let synced = !st.restarted
                || (!st.status.is_empty() && st.status.keys().all(|p| st.end_of_rib.contains(p)));
            let delete = synced || Instant::now() >= keep_old_until;
            (desired_routes(&st, Instant::now()), delete)
        };
        let (desired, delete) = desired;
        match sync_routes(&desired, delete) {
            Ok(problems) => {
                for p in problems {
                    if problems_logged.insert(p.clone()) {
                        log("WARNING", &format!("BGP: {p}"));
                    }
                }
            }
            Err(e) => {
                log("ERROR", &format!("BGP routes: {e}"));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// The route protocol of routes learned by BGP (Felix's are 80; BIRD's 12).
pub const PROTO_BGP: u8 = 81;

/// Whether the kernel holds routes of an earlier run (protocol [`PROTO_BGP`]).
pub fn kernel_has_bgp_routes() -> bool {
    let Ok(mut nl) = calico_dataplane::Netlink::open() else {
        return false;
    };
    [false, true].into_iter().any(|v6| {
        nl.routes(v6)
            .map(|rs| rs.iter().any(|r| r.protocol == PROTO_BGP))
            .unwrap_or(false)
    })
}

fn sync_routes(desired: &BTreeMap<IpNet, IpAddr>, delete: bool) -> Result<Vec<String>, String> {
    use calico_dataplane::netlink::{Route, TABLE_MAIN};
    let mut nl = calico_dataplane::Netlink::open().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let mut have: BTreeMap<IpNet, Option<IpAddr>> = BTreeMap::new();
    for v6 in [false, true] {
        for r in nl.routes(v6).map_err(|e| e.to_string())? {
            if r.protocol == PROTO_BGP && r.table == TABLE_MAIN {
                have.insert(r.dst, r.gateway);
            }
        }
    }
    for dst in have.keys() {
        if delete && !desired.contains_key(dst) {
            let _ = nl.delete_route(&Route::new(*dst).protocol(PROTO_BGP));
        }
    }
    for (dst, gw) in desired {
        if have.get(dst) == Some(&Some(*gw)) {
            continue;
        }
        let r = Route::new(*dst).via(*gw).protocol(PROTO_BGP);
        if let Err(e) = nl.replace_route(&r) {
            problems.push(format!("cannot install {dst} via {gw}: {e}"));
        }
    }
    Ok(problems)
}
