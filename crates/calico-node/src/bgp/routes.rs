//! Learned routes into the kernel: the best path per prefix
//! ([`best_path`], pure) installed in the main table with protocol
//! [`PROTO_BGP`] at [`metric`] by the programmer thread ([`program_loop`]).
//!
//! Those routes never beat or replace another owner's: they stand at a
//! metric of their own, worse than the kernel's, Felix's and an operator's
//! routes added without one; a prefix not in the programmer's record is
//! added, never replaced, so a route of someone else at that metric stays
//! (and ours waits, retried); deletions and the kernel read-back touch only
//! protocol [`PROTO_BGP`] at that metric. A learned prefix that takes over
//! the node's own ([`super::filter`]) is not installed unless the peer's
//! import rules accepted it.
//!
//! The programmer keeps its own record of the routes it has in the kernel
//! ([`Installed`]). After a change (and a short pause, [`GATHER`], that
//! takes in the rest of a burst of UPDATEs) it sweeps the learned routes
//! against that record and makes only the difference ([`Sweep`], pure); a
//! sweep that started before further changes is followed by another. A
//! sweep goes in chunks — a bounded number of routes examined and of kernel
//! changes per hold of the shared lock — so the peer threads never wait for
//! the kernel and no copy of a large table is made; the changes of a chunk
//! are made over [`SOCKETS`] netlink sockets at once (the kernel takes one
//! route change at a time, but the system calls, messages and
//! acknowledgements of one socket overlap the other's). The kernel is read
//! at start and every [`RESYNC`], which repairs what someone else changed;
//! stale routes of a restarting peer, routes the kernel refused (retried
//! with back-off) and the end of the graceful-restart wait wake the
//! programmer at their time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use calico_dataplane::Netlink;
use calico_dataplane::netlink::{Route, TABLE_MAIN};
use ipnet::{IpNet, Ipv4Net};

use super::filter::{self, Import, Verdict};
use super::speaker::{AdjRibIn, Shared, SharedState, lock};
use calico_api::resources::EncapMode;

mod installed;

pub use installed::{At, Installed};
#[cfg(test)]
use installed::{pack, unpack};

/// The route protocol of routes learned by BGP (Felix's are 80; BIRD's 12).
pub const PROTO_BGP: u8 = 81;

/// The metric of IPv4 routes learned by BGP: BIRD's kernel protocol
/// default, which Calico's BIRD uses. Felix's routes and the kernel's
/// connected routes have 0.
pub const METRIC_V4: u32 = 32;
/// The metric of IPv6 routes learned by BGP: the kernel files IPv6 routes
/// added without a metric (Felix's, `ip -6 route add`) at 1024 and
/// connected ones at 256, which BIRD's 32 would beat; 1024 + 32 does not.
pub const METRIC_V6: u32 = 1024 + 32;
// Never better than what the kernel, Felix or `ip route add` give.
const _: () = assert!(METRIC_V4 > 0 && METRIC_V6 > 1024);

/// The metric of our route to `prefix`.
pub fn metric(prefix: &IpNet) -> u32 {
    match prefix {
        IpNet::V4(_) => METRIC_V4,
        IpNet::V6(_) => METRIC_V6,
    }
}

/// Whether a route in the kernel is one of ours.
fn ours(r: &Route, metric_of_it: u32) -> bool {
    r.protocol == PROTO_BGP && r.table == TABLE_MAIN && metric_of_it == metric(&r.dst)
}

/// Pause after a change before sweeping: the rest of a burst comes in.
pub const GATHER: Duration = Duration::from_millis(20);
/// How often the kernel's routes are read again.
pub const RESYNC: Duration = Duration::from_secs(30);
/// Netlink sockets (and threads) a large chunk of changes is spread over.
pub const SOCKETS: usize = 2;
/// Fewer changes than this are made on one socket.
const SPREAD_MIN: usize = 64;
/// Routes of an earlier run are kept at most this long after start.
const KEEP_OLD: Duration = Duration::from_secs(120);
/// Routes the kernel refused are tried again after this, doubling up to
/// [`RETRY_MAX`] while they keep failing.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Per hold of the shared lock: routes examined, kernel changes gathered.
const LIMITS: Limits = Limits {
    scan: 16_384,
    changes: 2_048,
};

/// Whether learned routes to `prefix` stay out of the kernel: our own
/// exports, and prefixes inside VXLAN pools (the Felix part programs those
/// through `vxlan.calico`).
fn excluded(s: &SharedState, prefix: &IpNet) -> bool {
    s.rib.exports.contains(prefix) || s.pools.iter().any(|p| p.vxlan && p.cidr.contains(prefix))
}

/// The IP-in-IP device learned routes into IPIP pools go through.
pub const IPIP_DEVICE: &str = "tunl0";

/// Whether the route to `prefix` via `next_hop` goes through [`IPIP_DEVICE`]
/// (as Calico's `calico_kernel_programming` filter sets `krt_tunnel`): it is
/// inside an IP-in-IP pool, `Always`, or `CrossSubnet` with the next hop
/// outside this node's subnet.
pub fn via_tunnel(s: &SharedState, prefix: &IpNet, next_hop: IpAddr) -> bool {
    let IpAddr::V4(nh) = next_hop else {
        return false;
    };
    match s
        .pools
        .iter()
        .find(|p| p.cidr.contains(prefix))
        .map(|p| p.ipip)
    {
        Some(EncapMode::Always) => true,
        Some(EncapMode::CrossSubnet) => s.subnet.is_some_and(|n| !n.contains(&nh)),
        _ => false,
    }
}

/// What decides [`via_tunnel`] besides the route: when it changes, every
/// route is replaced once.
type TunnelMode = (Vec<(IpNet, EncapMode)>, Option<Ipv4Net>);

fn tunnel_mode(s: &SharedState) -> TunnelMode {
    let pools = s
        .pools
        .iter()
        .filter(|p| p.ipip != EncapMode::Never)
        .map(|p| (p.cidr, p.ipip))
        .collect();
    (pools, s.subnet)
}

/// Whether `l`'s path to `prefix` counts: not stale past its peer's
/// restart time, and not taking over the node's own ([`filter::decide`])
/// unless the peer's import rules accepted it.
fn usable(s: &SharedState, l: &AdjRibIn, prefix: &IpNet, now: Instant) -> bool {
    let accepted = l.accepted(prefix).then_some(Verdict::Accept);
    !l.expired(prefix, now) && filter::decide(prefix, &s.local, accepted) == Import::Kernel
}

/// What the kernel should have for `prefix`: (peer, next hop) of the best
/// usable learned path ([`calico_bgp::rib::Rib::best`]), or nothing.
pub fn best_path(s: &SharedState, prefix: &IpNet, now: Instant) -> Option<(IpAddr, IpAddr)> {
    if excluded(s, prefix) {
        return None;
    }
    s.rib
        .best(prefix, |l| usable(s, l, prefix, now))
        .map(|(peer, path)| (peer, path.next_hop))
}

/// [`best_path`] seen from one learned path: its next hop if `peer`'s
/// `path` to `prefix` is the best one (no look-ups with a single peer).
fn best_at(
    s: &SharedState,
    peer: IpAddr,
    l: &AdjRibIn,
    prefix: &IpNet,
    path: &calico_bgp::rib::Path,
    now: Instant,
) -> Option<IpAddr> {
    if !usable(s, l, prefix, now) || excluded(s, prefix) {
        return None;
    }
    s.rib
        .is_best(peer, prefix, path, |ol| usable(s, ol, prefix, now))
        .then_some(path.next_hop)
}

/// The routes the kernel should have: [`best_path`] of every learned prefix.
pub fn desired_routes(s: &SharedState, now: Instant) -> BTreeMap<IpNet, IpAddr> {
    let mut out = BTreeMap::new();
    for l in s.rib.peers.values() {
        for prefix in l.routes.keys() {
            if !out.contains_key(prefix)
                && let Some((_, next_hop)) = best_path(s, prefix, now)
            {
                out.insert(*prefix, next_hop);
            }
        }
    }
    out
}

/// A change to make in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Replace(IpNet, IpAddr),
    Delete(IpNet),
}

/// Where a sweep goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The learned routes, after this (peer, prefix) (`None`: all).
    Learned(Option<(IpAddr, IpNet)>),
    /// Our installed routes (those nothing wants any more go), after this.
    Installed(At),
}

/// The size of one chunk of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Routes examined.
    pub scan: usize,
    /// Changes gathered.
    pub changes: usize,
}

/// One sweep: brings the record of installed routes (and so the kernel) to
/// the [`best_path`]s, chunk by chunk. First the learned routes, each
/// prefix at the peer of its best path: what is missing or has another
/// gateway is replaced (unless it failed with that gateway: `failed` waits
/// for its retry). Then, with `delete`, the installed routes nothing wants
/// go — a walk of the whole record, skipped when the first part has shown
/// that every installed route is wanted (the wanted prefixes it found
/// already installed, plus those it installed, make the whole record).
#[derive(Debug, Clone)]
pub struct Sweep {
    now: Instant,
    delete: bool,
    /// Replace every wanted route, installed or not (how routes go changed).
    pub force: bool,
    cursor: Option<Cursor>,
    /// Wanted prefixes found installed, and installed by this sweep.
    kept: usize,
    added: usize,
}

impl Sweep {
    pub fn new(now: Instant, delete: bool) -> Sweep {
        Sweep {
            now,
            delete,
            force: false,
            cursor: Some(Cursor::Learned(None)),
            kept: 0,
            added: 0,
        }
    }

    /// The changes of the next chunk (`None`: the sweep is done). Before
    /// the next call, the caller makes them and reports with
    /// [`Sweep::installed_new`] how many of its replacements installed a
    /// prefix the record did not have.
    pub fn next_chunk(
        &mut self,
        s: &SharedState,
        installed: &Installed,
        failed: &BTreeMap<IpNet, IpAddr>,
        limits: Limits,
    ) -> Option<Vec<Change>> {
        let mut changes = Vec::new();
        let mut examined = 0;
        let full = |examined: usize, changes: &Vec<Change>| {
            examined >= limits.scan || changes.len() >= limits.changes
        };
        match self.cursor? {
            Cursor::Learned(after) => {
                let from = after.map_or(Bound::Unbounded, |(peer, _)| Bound::Included(peer));
                for (peer, l) in s.rib.peers.range((from, Bound::Unbounded)) {
                    let routes = match after {
                        Some((apeer, ap)) if apeer == *peer => {
                            l.routes.range((Bound::Excluded(ap), Bound::Unbounded))
                        }
                        _ => l.routes.range::<IpNet, _>(..),
                    };
                    for (prefix, path) in routes {
                        examined += 1;
                        if let Some(next_hop) = best_at(s, *peer, l, prefix, path, self.now) {
                            let have = installed.get(prefix);
                            if have.is_some() {
                                self.kept += 1;
                            }
                            if (self.force || have != Some(Some(next_hop)))
                                && failed.get(prefix) != Some(&next_hop)
                            {
                                changes.push(Change::Replace(*prefix, next_hop));
                            }
                        }
                        if full(examined, &changes) {
                            self.cursor = Some(Cursor::Learned(Some((*peer, *prefix))));
                            return Some(changes);
                        }
                    }
                }
                self.cursor = Some(Cursor::Installed(At::Start));
                Some(changes)
            }
            Cursor::Installed(at) => {
                if at == At::Start && (!self.delete || installed.len() == self.kept + self.added) {
                    self.cursor = None;
                    return None;
                }
                for (pos, prefix) in installed.after(at) {
                    examined += 1;
                    if best_path(s, &prefix, self.now).is_none() {
                        changes.push(Change::Delete(prefix));
                    }
                    if full(examined, &changes) {
                        self.cursor = Some(Cursor::Installed(pos));
                        return Some(changes);
                    }
                }
                self.cursor = None;
                Some(changes)
            }
        }
    }

    /// Reports replacements of the last chunk that installed a new prefix.
    pub fn installed_new(&mut self, n: usize) {
        self.added += n;
    }
}

/// Keeps the kernel's BGP routes (protocol [`PROTO_BGP`], main table) equal
/// to the [`best_path`]s; runs until `stop`.
pub fn program_loop(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    // Routes of an earlier run stay until every peer has re-sent its
    // routes (End-of-RIB) or the restart time passes: a restart does not
    // flap them.
    let keep_old_until = started + KEEP_OLD;
    let sockets = std::thread::available_parallelism().map_or(1, |n| n.get().min(SOCKETS));
    let mut p = Programmer {
        sockets: (0..sockets).map(|_| None).collect(),
        installed: Installed::default(),
        failed: BTreeMap::new(),
        retry_every: RETRY_MIN,
        retry_at: started,
        trouble: false,
        logged: BTreeSet::new(),
        mode: None,
    };
    let mut next_resync = started;
    // The generation the last complete sweep started from.
    let mut swept: Option<u64> = None;
    // When time alone calls for a sweep (stale routes expire, retries,
    // the end of the graceful-restart wait).
    let mut due: Option<Instant> = None;
    loop {
        let mut timed = false;
        if Instant::now() >= next_resync {
            match p.resync() {
                Ok(()) => next_resync = Instant::now() + RESYNC,
                Err(e) => {
                    log::error!("BGP routes: {e}");
                    next_resync = Instant::now() + Duration::from_secs(1);
                }
            }
            timed = true;
        }
        let changed = {
            let mut st = lock(&shared.state);
            // Wait for a change, or for the time of a resync or a timed sweep.
            while !timed && swept == Some(st.generation) {
                let now = Instant::now();
                let deadline = due.map_or(next_resync, |d| d.min(next_resync));
                if now >= deadline {
                    break;
                }
                let wait = (deadline - now).min(Duration::from_secs(1));
                st = match shared.changed.wait_timeout(st, wait) {
                    Ok((g, _)) => g,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            swept != Some(st.generation)
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if Instant::now() >= next_resync {
            continue;
        }
        if changed {
            std::thread::sleep(GATHER);
        }
        let (generation, next) = p.sweep(&shared, keep_old_until);
        swept = Some(generation);
        due = next;
    }
}

struct Programmer {
    /// One socket per programming thread, opened when needed (again after a
    /// failure to open, and fresh at each resync).
    sockets: Vec<Option<Netlink>>,
    installed: Installed,
    /// Routes the kernel refused, with the gateway tried.
    failed: BTreeMap<IpNet, IpAddr>,
    retry_every: Duration,
    retry_at: Instant,
    /// The last sweep left something undone: retry at `retry_at`.
    trouble: bool,
    /// Problems already logged.
    logged: BTreeSet<String>,
    /// The [`tunnel_mode`] of the last sweep.
    mode: Option<TunnelMode>,
}

/// How a replacement is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct How {
    /// `dev tunl0 onlink`.
    tunnel: bool,
    /// The record has our route to the prefix: replace it; else add, and
    /// a route of someone else at our metric stays.
    ours: bool,
}

/// Makes `changes` on one socket; one result each. A replacement whose
/// entry in `hows` says so goes `dev tunl0 onlink` (`tunl0`: its index).
fn program(
    nl: &mut Netlink,
    changes: &[Change],
    hows: &[How],
    tunl0: Option<u32>,
) -> Vec<Result<(), calico_dataplane::netlink::Error>> {
    changes
        .iter()
        .zip(
            hows.iter()
                .copied()
                .chain(std::iter::repeat(How::default())),
        )
        .map(|(c, how)| match *c {
            Change::Replace(dst, gw) => {
                let r = Route::new(dst).via(gw).protocol(PROTO_BGP);
                let set = |nl: &mut Netlink, r: &Route| {
                    if how.ours {
                        nl.replace_route_at(r, metric(&dst))
                    } else {
                        nl.add_route_at(r, metric(&dst))
                    }
                };
                match (how.tunnel, tunl0) {
                    (false, _) => set(nl, &r),
                    (true, Some(ix)) => set(nl, &r.dev(ix).onlink()),
                    (true, None) => Err(calico_dataplane::netlink::Error {
                        op: format!("route {dst} via {gw} dev {IPIP_DEVICE}"),
                        source: std::io::Error::other(
                            "no tunl0: IP-in-IP needs the kernel's ipip module",
                        ),
                    }),
                }
            }
            Change::Delete(dst) => {
                match nl.delete_route_at(&Route::new(dst).protocol(PROTO_BGP), metric(&dst)) {
                    Err(e) if e.is_not_found() => Ok(()),
                    r => r,
                }
            }
        })
        .collect()
}

impl Programmer {
    /// Reads our routes from the kernel into the record.
    fn resync(&mut self) -> Result<(), String> {
        // Fresh sockets now and then: a broken one does not linger.
        for s in &mut self.sockets {
            *s = None;
        }
        let mut nl = Netlink::open().map_err(|e| e.to_string())?;
        let mut installed = Installed::default();
        // Routes of this protocol at another metric were installed by an
        // earlier calico-rs (metric 0, where they could take the place of
        // the node's own routes): they go.
        let mut earlier = Vec::new();
        for v6 in [false, true] {
            // Straight into the record, route by route as the dump is read.
            nl.for_each_route_metric(v6, &mut |r, m| {
                if ours(&r, m) {
                    installed.insert(r.dst, r.gateway);
                } else if r.protocol == PROTO_BGP && r.table == TABLE_MAIN {
                    earlier.push((r, m));
                }
            })
            .map_err(|e| e.to_string())?;
        }
        if !earlier.is_empty() {
            log::info!(
                "BGP: removing {} routes an earlier version installed at another metric",
                earlier.len()
            );
        }
        for (r, m) in &earlier {
            if let Err(e) = nl.delete_route_at(r, *m) {
                log::warn!("BGP: cannot remove {}: {e}", r.dst);
            }
        }
        self.installed = installed;
        if let Some(s) = self.sockets.first_mut() {
            *s = Some(nl);
        }
        Ok(())
    }

    /// One sweep, chunk by chunk; returns the generation it started from
    /// and when time alone calls for the next one.
    fn sweep(&mut self, shared: &Shared, keep_old_until: Instant) -> (u64, Option<Instant>) {
        let now = Instant::now();
        let retry = self.trouble && now >= self.retry_at;
        if retry {
            self.failed.clear();
        }
        let mut st = lock(&shared.state);
        let generation = st.generation;
        let synced = !st.restarted
            || (!st.status.is_empty() && st.status.keys().all(|p| st.rib.end_of_rib.contains(p)));
        let delete = synced || now >= keep_old_until;
        let mut due = st
            .rib
            .peers
            .values()
            .filter(|l| !l.stale.is_empty())
            .filter_map(|l| l.stale_until)
            .filter(|t| *t > now)
            .min();
        if !delete {
            due = Some(due.map_or(keep_old_until, |d| d.min(keep_old_until)));
        }
        let mut sweep = Sweep::new(now, delete);
        let mode = tunnel_mode(&st);
        if self.mode.as_ref() != Some(&mode) {
            // Routes may have to move into or out of the tunnel.
            sweep.force = self.mode.is_some();
            self.mode = Some(mode);
        }
        let mut problems = Vec::new();
        while let Some(changes) = sweep.next_chunk(&st, &self.installed, &self.failed, LIMITS) {
            let hows: Vec<How> = changes
                .iter()
                .map(|c| match *c {
                    Change::Replace(d, g) => How {
                        tunnel: via_tunnel(&st, &d, g),
                        ours: self.installed.contains(&d),
                    },
                    Change::Delete(_) => How::default(),
                })
                .collect();
            drop(st);
            let new = self.apply(&changes, &hows, &mut problems);
            sweep.installed_new(new);
            st = lock(&shared.state);
        }
        drop(st);
        self.trouble = !problems.is_empty() || !self.failed.is_empty();
        if self.trouble {
            if retry {
                self.retry_every = (self.retry_every * 2).min(RETRY_MAX);
            }
            if retry || self.retry_at <= now {
                self.retry_at = now + self.retry_every;
            }
            due = Some(due.map_or(self.retry_at, |d| d.min(self.retry_at)));
        } else {
            self.retry_every = RETRY_MIN;
        }
        self.report(problems);
        (generation, due)
    }

    /// Makes `changes`, a large batch spread over the sockets, and records
    /// the outcome; returns how many replacements installed a prefix the
    /// record did not have.
    fn apply(&mut self, changes: &[Change], hows: &[How], problems: &mut Vec<String>) -> usize {
        if changes.is_empty() {
            return 0;
        }
        let n = if changes.len() >= SPREAD_MIN {
            self.sockets.len()
        } else {
            1
        };
        for s in self.sockets.iter_mut().take(n) {
            if s.is_none() {
                match Netlink::open() {
                    Ok(nl) => *s = Some(nl),
                    Err(e) => problems.push(format!("netlink: {e}")),
                }
            }
        }
        let mut open: Vec<&mut Netlink> = self.sockets.iter_mut().take(n).flatten().collect();
        let Some((first, rest)) = open.split_first_mut() else {
            for c in changes {
                if let Change::Replace(dst, gw) = *c {
                    self.failed.insert(dst, gw);
                }
            }
            return 0;
        };
        // tunl0, when a route goes through it (up, as Felix leaves it).
        let mut tunl0 = None;
        if hows.iter().any(|h| h.tunnel) {
            match first.link(IPIP_DEVICE) {
                Ok(Some(l)) => {
                    if !l.up {
                        let _ = first.set_up(l.index);
                    }
                    tunl0 = Some(l.index);
                }
                Ok(None) => {}
                Err(e) => problems.push(format!("{IPIP_DEVICE}: {e}")),
            }
        }
        let size = changes.len().div_ceil(1 + rest.len());
        let parts: Vec<&[Change]> = changes.chunks(size).collect();
        let how_parts: Vec<&[How]> = hows.chunks(size).collect();
        let results = std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter_mut()
                .zip(parts[1..].iter().zip(how_parts.iter().skip(1)))
                .map(|(nl, (part, tun))| {
                    let h = std::thread::Builder::new()
                        .name("bgp-routes-2".into())
                        .spawn_scoped(scope, move || program(nl, part, tun, tunl0));
                    (*part, *tun, h)
                })
                .collect();
            let first_hows = how_parts.first().copied().unwrap_or(&[]);
            let mut results = program(first, parts[0], first_hows, tunl0);
            for (part, tun, h) in others {
                match h {
                    Ok(h) => match h.join() {
                        Ok(r) => results.extend(r),
                        Err(_) => results.extend(part.iter().map(|_| {
                            Err(calico_dataplane::netlink::Error {
                                op: "program routes".into(),
                                source: std::io::Error::other("thread panicked"),
                            })
                        })),
                    },
                    // No thread: this one makes them.
                    Err(_) => results.extend(program(first, part, tun, tunl0)),
                }
            }
            results
        });
        let mut new = 0;
        for (c, r) in changes.iter().zip(results) {
            match (*c, r) {
                (Change::Replace(dst, gw), Ok(())) => {
                    if !self.installed.contains(&dst) {
                        new += 1;
                    }
                    self.installed.insert(dst, Some(gw));
                    self.failed.remove(&dst);
                }
                (Change::Replace(dst, gw), Err(e)) => {
                    self.failed.insert(dst, gw);
                    if e.is_exists() {
                        problems.push(format!(
                            "{dst} via {gw} not installed: the kernel has another owner's route \
                             to {dst} at metric {}, which is left alone",
                            metric(&dst)
                        ));
                    } else {
                        problems.push(format!("cannot install {dst} via {gw}: {e}"));
                    }
                }
                (Change::Delete(dst), Ok(())) => self.installed.remove(&dst),
                (Change::Delete(dst), Err(e)) => {
                    problems.push(format!("cannot delete {dst}: {e}"));
                }
            }
        }
        new
    }

    /// Logs each problem once (the first few of a sweep; a count of the rest).
    fn report(&mut self, problems: Vec<String>) {
        let mut more = 0;
        let mut shown = 0;
        for p in problems {
            if self.logged.contains(&p) {
                continue;
            }
            if shown < 10 {
                log::warn!("BGP: {p}");
                shown += 1;
            } else {
                more += 1;
            }
            if self.logged.len() < 10_000 {
                self.logged.insert(p);
            }
        }
        if more > 0 {
            log::warn!("BGP: and {more} more routes could not be programmed");
        }
    }
}

/// Whether the kernel holds routes of an earlier run (protocol [`PROTO_BGP`]
/// at [`metric`]).
pub fn kernel_has_bgp_routes() -> bool {
    let Ok(mut nl) = Netlink::open() else {
        return false;
    };
    let mut found = false;
    for v6 in [false, true] {
        let _ = nl.for_each_route_metric(v6, &mut |r, m| found |= ours(&r, m));
    }
    found
}

#[cfg(test)]
mod tests;
