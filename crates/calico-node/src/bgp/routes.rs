//! Learned routes into the kernel: the best path per prefix
//! ([`best_path`], pure) installed in the main table with protocol
//! [`PROTO_BGP`] by the programmer thread ([`program_loop`]).
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
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use calico_dataplane::Netlink;
use calico_dataplane::netlink::{Route, TABLE_MAIN};
use ipnet::{IpNet, Ipv4Net};

use super::plan::Ipip;
use super::speaker::{Log, Path, PeerRoutes, Shared, SharedState, lock};

/// The route protocol of routes learned by BGP (Felix's are 80; BIRD's 12).
pub const PROTO_BGP: u8 = 81;

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
    s.exports.contains(prefix) || s.pools.iter().any(|p| p.vxlan && p.cidr.contains(prefix))
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
        Some(Ipip::Always) => true,
        Some(Ipip::CrossSubnet) => s.subnet.is_some_and(|n| !n.contains(&nh)),
        _ => false,
    }
}

/// What decides [`via_tunnel`] besides the route: when it changes, every
/// route is replaced once.
type TunnelMode = (Vec<(IpNet, Ipip)>, Option<Ipv4Net>);

fn tunnel_mode(s: &SharedState) -> TunnelMode {
    let pools = s
        .pools
        .iter()
        .filter(|p| p.ipip != Ipip::Never)
        .map(|p| (p.cidr, p.ipip))
        .collect();
    (pools, s.subnet)
}

/// Whether `l`'s path to `prefix` counts: not stale past its peer's
/// restart time.
fn usable(l: &PeerRoutes, prefix: &IpNet, now: Instant) -> bool {
    !(l.stale_until.is_some_and(|t| t <= now) && l.stale.contains(prefix))
}

/// Path preference: highest LOCAL_PREF, shortest AS path, lowest peer
/// address (smallest rank first).
pub(crate) fn rank(path: &Path, peer: IpAddr) -> (std::cmp::Reverse<u32>, usize, IpAddr) {
    (std::cmp::Reverse(path.local_pref), path.as_path_len, peer)
}

/// What the kernel should have for `prefix`: (peer, next hop) of the best
/// usable learned path, or nothing.
pub fn best_path(s: &SharedState, prefix: &IpNet, now: Instant) -> Option<(IpAddr, IpAddr)> {
    if excluded(s, prefix) {
        return None;
    }
    let mut best: Option<(IpAddr, &Path)> = None;
    for (peer, l) in &s.learned {
        let Some(path) = l.routes.get(prefix).map(|p| &**p) else {
            continue;
        };
        if !usable(l, prefix, now) {
            continue;
        }
        if best.is_none_or(|(bpeer, b)| rank(path, *peer) < rank(b, bpeer)) {
            best = Some((*peer, path));
        }
    }
    best.map(|(peer, path)| (peer, path.next_hop))
}

/// [`best_path`] seen from one learned path: its next hop if `peer`'s
/// `path` to `prefix` is the best one (no look-ups with a single peer).
fn best_at(
    s: &SharedState,
    peer: IpAddr,
    l: &PeerRoutes,
    prefix: &IpNet,
    path: &Path,
    now: Instant,
) -> Option<IpAddr> {
    if !usable(l, prefix, now) || excluded(s, prefix) {
        return None;
    }
    let mine = rank(path, peer);
    for (other, ol) in &s.learned {
        if *other != peer
            && let Some(op) = ol.routes.get(prefix)
            && usable(ol, prefix, now)
            && rank(op, *other) < mine
        {
            return None;
        }
    }
    Some(path.next_hop)
}

/// The routes the kernel should have: [`best_path`] of every learned prefix.
pub fn desired_routes(s: &SharedState, now: Instant) -> BTreeMap<IpNet, IpAddr> {
    let mut out = BTreeMap::new();
    for l in s.learned.values() {
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

/// The programmer's record of its routes in the kernel: prefix → gateway
/// (`None`: a route of ours without one, found in the kernel). IPv4
/// prefixes with IPv4 gateways — nearly all — are packed in 12 bytes, keyed
/// with the address bits reversed: walking the record (to withdraw) visits
/// the address space scattered, and the kernel's routing trie takes
/// scattered deletions about a third faster than ordered ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    v4: BTreeMap<u64, u32>,
    other: BTreeMap<IpNet, Option<IpAddr>>,
}

/// A position in [`Installed`]'s order, to go on after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Start,
    V4(u64),
    Other(IpNet),
}

fn pack(n: &Ipv4Net) -> u64 {
    (u64::from(u32::from(n.addr()).reverse_bits()) << 8) | u64::from(n.prefix_len())
}

fn unpack(k: u64) -> IpNet {
    let addr = u32::try_from(k >> 8).unwrap_or_default().reverse_bits();
    let len = u8::try_from(k & 0xff).unwrap_or_default();
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap_or_default())
}

impl Installed {
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gateway of our route to `prefix`, if we have one.
    pub fn get(&self, prefix: &IpNet) -> Option<Option<IpAddr>> {
        if let IpNet::V4(n) = prefix
            && let Some(gw) = self.v4.get(&pack(n))
        {
            return Some(Some(IpAddr::V4(Ipv4Addr::from(*gw))));
        }
        self.other.get(prefix).copied()
    }

    pub fn contains(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    pub fn insert(&mut self, prefix: IpNet, gateway: Option<IpAddr>) {
        match (prefix, gateway) {
            (IpNet::V4(n), Some(IpAddr::V4(gw))) => {
                self.v4.insert(pack(&n), u32::from(gw));
                if !self.other.is_empty() {
                    self.other.remove(&prefix);
                }
            }
            _ => {
                if let IpNet::V4(n) = prefix {
                    self.v4.remove(&pack(&n));
                }
                self.other.insert(prefix, gateway);
            }
        }
    }

    pub fn remove(&mut self, prefix: &IpNet) {
        if let IpNet::V4(n) = prefix {
            self.v4.remove(&pack(n));
        }
        self.other.remove(prefix);
    }

    /// The prefixes after `at`, each with its position.
    pub fn after(&self, at: At) -> impl Iterator<Item = (At, IpNet)> + '_ {
        let v4 = match at {
            At::Start => Some(self.v4.range(..)),
            At::V4(k) => Some(self.v4.range((Bound::Excluded(k), Bound::Unbounded))),
            At::Other(_) => None,
        };
        let other = match at {
            At::Other(p) => self.other.range((Bound::Excluded(p), Bound::Unbounded)),
            _ => self.other.range(..),
        };
        v4.into_iter()
            .flatten()
            .map(|(k, _)| (At::V4(*k), unpack(*k)))
            .chain(other.map(|(p, _)| (At::Other(*p), *p)))
    }
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
                for (peer, l) in s.learned.range((from, Bound::Unbounded)) {
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
pub fn program_loop(shared: Arc<Shared>, stop: Arc<AtomicBool>, log: Log) {
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
        log,
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
                    (p.log)("ERROR", &format!("BGP routes: {e}"));
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
    log: Log,
    /// The [`tunnel_mode`] of the last sweep.
    mode: Option<TunnelMode>,
}

/// Makes `changes` on one socket; one result each. A replacement whose
/// entry in `tunnels` is set goes `dev tunl0 onlink` (`tunl0`: its index).
fn program(
    nl: &mut Netlink,
    changes: &[Change],
    tunnels: &[bool],
    tunl0: Option<u32>,
) -> Vec<Result<(), calico_dataplane::netlink::Error>> {
    changes
        .iter()
        .zip(tunnels.iter().chain(std::iter::repeat(&false)))
        .map(|(c, tunnel)| match *c {
            Change::Replace(dst, gw) => {
                let r = Route::new(dst).via(gw).protocol(PROTO_BGP);
                match (tunnel, tunl0) {
                    (false, _) => nl.replace_route(&r),
                    (true, Some(ix)) => nl.replace_route(&r.dev(ix).onlink()),
                    (true, None) => Err(calico_dataplane::netlink::Error {
                        op: format!("route {dst} via {gw} dev {IPIP_DEVICE}"),
                        source: std::io::Error::other(
                            "no tunl0: IP-in-IP needs the kernel's ipip module",
                        ),
                    }),
                }
            }
            Change::Delete(dst) => match nl.delete_route(&Route::new(dst).protocol(PROTO_BGP)) {
                Err(e) if e.is_not_found() => Ok(()),
                r => r,
            },
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
        for v6 in [false, true] {
            // Straight into the record, route by route as the dump is read.
            nl.for_each_route(v6, &mut |r| {
                if r.protocol == PROTO_BGP && r.table == TABLE_MAIN {
                    installed.insert(r.dst, r.gateway);
                }
            })
            .map_err(|e| e.to_string())?;
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
            || (!st.status.is_empty() && st.status.keys().all(|p| st.end_of_rib.contains(p)));
        let delete = synced || now >= keep_old_until;
        let mut due = st
            .learned
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
            let tunnels: Vec<bool> = changes
                .iter()
                .map(|c| matches!(*c, Change::Replace(d, g) if via_tunnel(&st, &d, g)))
                .collect();
            drop(st);
            let new = self.apply(&changes, &tunnels, &mut problems);
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
    fn apply(&mut self, changes: &[Change], tunnels: &[bool], problems: &mut Vec<String>) -> usize {
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
        if tunnels.contains(&true) {
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
        let tunnel_parts: Vec<&[bool]> = tunnels.chunks(size).collect();
        let results = std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter_mut()
                .zip(parts[1..].iter().zip(tunnel_parts.iter().skip(1)))
                .map(|(nl, (part, tun))| {
                    let h = std::thread::Builder::new()
                        .name("bgp-routes-2".into())
                        .spawn_scoped(scope, move || program(nl, part, tun, tunl0));
                    (*part, *tun, h)
                })
                .collect();
            let first_tunnels = tunnel_parts.first().copied().unwrap_or(&[]);
            let mut results = program(first, parts[0], first_tunnels, tunl0);
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
                    problems.push(format!("cannot install {dst} via {gw}: {e}"));
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
                (self.log)("WARNING", &format!("BGP: {p}"));
                shown += 1;
            } else {
                more += 1;
            }
            if self.logged.len() < 10_000 {
                self.logged.insert(p);
            }
        }
        if more > 0 {
            (self.log)(
                "WARNING",
                &format!("BGP: and {more} more routes could not be programmed"),
            );
        }
    }
}

/// Whether the kernel holds routes of an earlier run (protocol [`PROTO_BGP`]).
pub fn kernel_has_bgp_routes() -> bool {
    let Ok(mut nl) = Netlink::open() else {
        return false;
    };
    let mut found = false;
    for v6 in [false, true] {
        let _ = nl.for_each_route(v6, &mut |r| found |= r.protocol == PROTO_BGP);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::plan::{BgpPool, Ipip};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn path(next_hop: &str, local_pref: u32, as_path_len: usize) -> Arc<Path> {
        Arc::new(Path {
            next_hop: ip(next_hop),
            as_path_len,
            local_pref,
            attributes: calico_bgp::msg::Attributes::default(),
        })
    }

    fn learn(s: &mut SharedState, peer: &str, prefix: &str, p: Arc<Path>) {
        s.learned
            .entry(ip(peer))
            .or_default()
            .routes
            .insert(net(prefix), p);
    }

    #[test]
    fn ip_in_ip_pools_go_through_tunl0_cross_subnet_only_across_subnets() {
        let mut s = SharedState {
            subnet: Some("172.31.0.0/24".parse().unwrap()),
            ..SharedState::default()
        };
        for (cidr, ipip) in [
            ("10.1.0.0/16", Ipip::Always),
            ("10.2.0.0/16", Ipip::CrossSubnet),
            ("10.3.0.0/16", Ipip::Never),
        ] {
            s.pools.push(BgpPool {
                cidr: net(cidr),
                disable_export: false,
                vxlan: false,
                ipip,
            });
        }
        let (near, far) = (ip("172.31.0.2"), ip("172.31.9.2"));
        assert!(via_tunnel(&s, &net("10.1.0.0/26"), near));
        assert!(!via_tunnel(&s, &net("10.2.0.0/26"), near));
        assert!(via_tunnel(&s, &net("10.2.0.0/26"), far));
        assert!(!via_tunnel(&s, &net("10.3.0.0/26"), far));
        assert!(
            !via_tunnel(&s, &net("192.168.0.0/24"), far),
            "outside pools"
        );
        assert!(!via_tunnel(&s, &net("fd00::/122"), ip("fd00::2")));
        s.subnet = None;
        assert!(
            !via_tunnel(&s, &net("10.2.0.0/26"), far),
            "no subnet: no tunnel"
        );
        // A change of mode makes the next sweep replace every route.
        let before = tunnel_mode(&s);
        s.pools[2].ipip = Ipip::Always;
        assert_ne!(before, tunnel_mode(&s));
    }

    #[test]
    fn installed_packs_ipv4_and_keeps_the_rest() {
        let mut i = Installed::default();
        assert!(i.is_empty());
        i.insert(net("10.0.0.0/24"), Some(ip("172.31.0.1")));
        i.insert(net("10.0.1.1/32"), None);
        i.insert(net("10.0.2.0/24"), Some(ip("fd00::1")));
        i.insert(net("fd00:1::/64"), Some(ip("fd00::2")));
        assert_eq!(i.len(), 4);
        assert_eq!(i.v4.len(), 1);
        assert_eq!(i.get(&net("10.0.0.0/24")), Some(Some(ip("172.31.0.1"))));
        assert_eq!(i.get(&net("10.0.0.0/25")), None);
        assert_eq!(i.get(&net("10.0.1.1/32")), Some(None));
        assert_eq!(i.get(&net("10.0.2.0/24")), Some(Some(ip("fd00::1"))));
        assert_eq!(i.get(&net("fd00:1::/64")), Some(Some(ip("fd00::2"))));
        // A gateway of the other kind moves the entry between the maps.
        i.insert(net("10.0.1.1/32"), Some(ip("172.31.0.2")));
        i.insert(net("10.0.0.0/24"), None);
        assert_eq!(i.get(&net("10.0.1.1/32")), Some(Some(ip("172.31.0.2"))));
        assert_eq!(i.get(&net("10.0.0.0/24")), Some(None));
        assert_eq!(i.len(), 4);
        i.remove(&net("10.0.1.1/32"));
        i.remove(&net("fd00:1::/64"));
        i.remove(&net("10.9.9.9/32"));
        assert_eq!(i.len(), 2);
        for p in ["0.0.0.0/0", "255.255.255.255/32", "10.1.2.3/32"] {
            assert_eq!(unpack(pack(&p.parse().unwrap_or_default())), net(p));
        }
    }

    #[test]
    fn installed_iterates_from_any_position() {
        let mut i = Installed::default();
        let all = [
            "10.0.0.0/24",
            "10.0.0.0/25",
            "10.0.1.0/24",
            "192.168.0.0/16",
            "fd00::/64",
            "fd00:1::/64",
        ];
        for (n, p) in all.iter().enumerate() {
            let gw = if n == 2 { None } else { Some(ip("172.31.0.1")) };
            i.insert(net(p), gw);
        }
        let from_start: Vec<(At, IpNet)> = i.after(At::Start).collect();
        assert_eq!(from_start.len(), all.len());
        let mut seen: Vec<String> = from_start.iter().map(|(_, p)| p.to_string()).collect();
        seen.sort();
        let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(seen, want);
        // Going on after each position gives exactly the rest.
        for (k, (pos, _)) in from_start.iter().enumerate() {
            let rest: Vec<IpNet> = i.after(*pos).map(|(_, p)| p).collect();
            let expect: Vec<IpNet> = from_start[k + 1..].iter().map(|(_, p)| *p).collect();
            assert_eq!(rest, expect, "after {pos:?}");
        }
    }

    #[test]
    fn best_path_prefers_local_pref_then_as_path_then_lowest_peer() {
        let now = Instant::now();
        let mut s = SharedState::default();
        // Each step learns one path to 10.1.0.0/24 (peer, next hop, local
        // pref, AS path length), then the best is (peer, next hop).
        let steps = [
            (
                ("172.31.0.3", "172.31.0.3", 100, 1),
                ("172.31.0.3", "172.31.0.3"),
            ),
            // Same preference: the lower peer address.
            (
                ("172.31.0.2", "172.31.0.2", 100, 1),
                ("172.31.0.2", "172.31.0.2"),
            ),
            // A shorter AS path.
            (
                ("172.31.0.3", "172.31.0.3", 100, 0),
                ("172.31.0.3", "172.31.0.3"),
            ),
            // A higher local pref beats a longer path.
            (
                ("172.31.0.4", "172.31.0.9", 200, 5),
                ("172.31.0.4", "172.31.0.9"),
            ),
        ];
        for ((peer, hop, pref, len), (best_peer, best_hop)) in steps {
            learn(&mut s, peer, "10.1.0.0/24", path(hop, pref, len));
            assert_eq!(
                best_path(&s, &net("10.1.0.0/24"), now),
                Some((ip(best_peer), ip(best_hop))),
                "after learning from {peer}"
            );
        }
        assert_eq!(best_path(&s, &net("10.2.0.0/24"), now), None);
    }

    #[test]
    fn best_path_leaves_out_exports_vxlan_pools_and_expired_stale_routes() {
        let now = Instant::now();
        let mut s = SharedState::default();
        for p in ["10.1.0.0/26", "10.2.0.0/26", "10.3.0.0/26", "10.4.0.0/26"] {
            learn(&mut s, "172.31.0.2", p, path("172.31.0.2", 100, 0));
        }
        s.exports.insert(net("10.1.0.0/26"));
        s.pools.push(BgpPool {
            cidr: net("10.2.0.0/16"),
            disable_export: false,
            vxlan: true,
            ipip: Ipip::Never,
        });
        s.pools.push(BgpPool {
            cidr: net("10.3.0.0/16"),
            disable_export: false,
            vxlan: false,
            ipip: Ipip::Never,
        });
        let l = s.learned.entry(ip("172.31.0.2")).or_default();
        l.stale.insert(net("10.4.0.0/26"));
        l.stale_until = Some(now + Duration::from_secs(5));
        let desired: Vec<IpNet> = desired_routes(&s, now).into_keys().collect();
        assert_eq!(desired, [net("10.3.0.0/26"), net("10.4.0.0/26")]);
        // Past the restart time the stale route goes.
        let later = now + Duration::from_secs(6);
        let desired: Vec<IpNet> = desired_routes(&s, later).into_keys().collect();
        assert_eq!(desired, [net("10.3.0.0/26")]);
    }

    /// Runs a whole sweep with `limits`, applying each chunk to `installed`
    /// as the kernel would take it; returns the number of chunks.
    fn sweep_all(
        s: &SharedState,
        installed: &mut Installed,
        failed: &BTreeMap<IpNet, IpAddr>,
        now: Instant,
        delete: bool,
        limits: Limits,
    ) -> usize {
        let mut sweep = Sweep::new(now, delete);
        let mut chunks = 0;
        while let Some(changes) = sweep.next_chunk(s, installed, failed, limits) {
            chunks += 1;
            assert!(changes.len() <= limits.changes);
            sweep.installed_new(apply(installed, &changes));
            assert!(chunks < 100_000, "the sweep never ends");
        }
        chunks
    }

    /// `changes` made in `installed`; the number of new prefixes.
    fn apply(installed: &mut Installed, changes: &[Change]) -> usize {
        let mut new = 0;
        for c in changes {
            match *c {
                Change::Replace(p, gw) => {
                    new += usize::from(!installed.contains(&p));
                    installed.insert(p, Some(gw));
                }
                Change::Delete(p) => installed.remove(&p),
            }
        }
        new
    }

    fn as_installed(m: &BTreeMap<IpNet, IpAddr>) -> Installed {
        let mut i = Installed::default();
        for (p, gw) in m {
            i.insert(*p, Some(*gw));
        }
        i
    }

    /// A small deterministic generator (the crate has no proptest).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % below
        }
    }

    fn random_state(rng: &mut Lcg, now: Instant) -> SharedState {
        let mut s = SharedState::default();
        let peers = 1 + rng.next(4);
        for peer in 0..peers {
            let addr = format!("172.31.0.{}", peer + 1);
            let count = rng.next(60);
            for _ in 0..count {
                let prefix = if rng.next(5) == 0 {
                    format!("fd00:{:x}::/64", rng.next(40))
                } else {
                    format!("10.{}.{}.0/24", rng.next(3), rng.next(30))
                };
                let nh = format!("172.31.0.{}", 1 + rng.next(6));
                learn(
                    &mut s,
                    &addr,
                    &prefix,
                    path(&nh, 100 + 50 * u32::from(rng.next(3) == 0), 1),
                );
            }
            if rng.next(3) == 0 {
                let l = s.learned.entry(ip(&addr)).or_default();
                l.stale = l
                    .routes
                    .keys()
                    .filter(|_| rng.next(2) == 0)
                    .copied()
                    .collect();
                let secs = rng.next(3);
                l.stale_until = Some(now - Duration::from_secs(1) + Duration::from_secs(secs));
            }
        }
        if rng.next(2) == 0 {
            s.exports.insert(net("10.0.1.0/24"));
        }
        if rng.next(2) == 0 {
            s.pools.push(BgpPool {
                cidr: net("10.2.0.0/16"),
                disable_export: false,
                vxlan: true,
                ipip: Ipip::Never,
            });
        }
        s
    }

    #[test]
    fn sweeps_in_small_chunks_reach_the_best_paths() {
        let now = Instant::now();
        let mut rng = Lcg(7);
        let (mut wanted, mut chunked) = (0, 0);
        for round in 0..300 {
            let s = random_state(&mut rng, now);
            let want = desired_routes(&s, now);
            wanted += want.len();
            // What the kernel had: some of it right, some wrong, some
            // extra, or nothing.
            let mut installed = if rng.next(4) == 0 {
                Installed::default()
            } else {
                let other = random_state(&mut rng, now);
                as_installed(&desired_routes(&other, now))
            };
            if let Some((p, _)) = want.iter().next() {
                installed.insert(*p, None);
            }
            let limits = Limits {
                scan: 1 + rng.next(7) as usize,
                changes: 1 + rng.next(5) as usize,
            };
            if sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, limits) > 10 {
                chunked += 1;
            }
            assert_eq!(installed, as_installed(&want), "round {round}");
            // Nothing more to do.
            let mut again = Sweep::new(now, true);
            while let Some(changes) = again.next_chunk(&s, &installed, &BTreeMap::new(), limits) {
                assert_eq!(changes, [], "round {round}");
            }
        }
        assert!(
            wanted > 3_000 && chunked > 100,
            "{wanted} routes, {chunked}"
        );
    }

    #[test]
    fn the_walk_for_withdrawals_is_skipped_when_every_installed_route_is_wanted() {
        let now = Instant::now();
        let mut s = SharedState::default();
        for i in 0..10 {
            learn(
                &mut s,
                "172.31.0.2",
                &format!("10.1.{i}.0/24"),
                path("172.31.0.2", 100, 0),
            );
        }
        let one = Limits {
            scan: 1,
            changes: 1,
        };
        // Half of them installed already: 10 chunks of one route each, and
        // one that finds the end of the learned routes.
        let mut installed = Installed::default();
        for i in 0..5 {
            installed.insert(net(&format!("10.1.{i}.0/24")), Some(ip("172.31.0.2")));
        }
        let chunks = sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, one);
        assert_eq!(chunks, 11);
        assert_eq!(installed.len(), 10);
        // One extra route: the walk runs, and takes it away.
        installed.insert(net("10.9.0.0/24"), Some(ip("172.31.0.2")));
        let chunks = sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, one);
        assert!(chunks > 11, "{chunks}");
        assert_eq!(installed, as_installed(&desired_routes(&s, now)));
    }

    #[test]
    fn a_sweep_without_delete_keeps_routes_of_an_earlier_run() {
        let now = Instant::now();
        let mut s = SharedState::default();
        learn(
            &mut s,
            "172.31.0.2",
            "10.1.0.0/24",
            path("172.31.0.2", 100, 0),
        );
        let mut installed = Installed::default();
        installed.insert(net("10.1.0.0/24"), Some(ip("172.31.0.9")));
        installed.insert(net("10.9.0.0/24"), Some(ip("172.31.0.9")));
        let limits = Limits {
            scan: 1,
            changes: 1,
        };
        sweep_all(&s, &mut installed, &BTreeMap::new(), now, false, limits);
        assert_eq!(
            installed.get(&net("10.1.0.0/24")),
            Some(Some(ip("172.31.0.2")))
        );
        assert_eq!(
            installed.get(&net("10.9.0.0/24")),
            Some(Some(ip("172.31.0.9")))
        );
        sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, limits);
        assert_eq!(installed.get(&net("10.9.0.0/24")), None);
        assert_eq!(installed.len(), 1);
    }

    #[test]
    fn a_route_that_failed_waits_for_its_retry_unless_its_gateway_changes() {
        let now = Instant::now();
        let mut s = SharedState::default();
        learn(
            &mut s,
            "172.31.0.2",
            "10.1.0.0/24",
            path("172.31.0.2", 100, 0),
        );
        let installed = Installed::default();
        let mut failed = BTreeMap::new();
        failed.insert(net("10.1.0.0/24"), ip("172.31.0.2"));
        let sweep = |s: &SharedState, failed: &BTreeMap<IpNet, IpAddr>| {
            Sweep::new(now, true)
                .next_chunk(s, &installed, failed, LIMITS)
                .unwrap_or_default()
        };
        assert_eq!(sweep(&s, &failed), []);
        learn(
            &mut s,
            "172.31.0.2",
            "10.1.0.0/24",
            path("172.31.0.3", 100, 0),
        );
        assert_eq!(
            sweep(&s, &failed),
            [Change::Replace(net("10.1.0.0/24"), ip("172.31.0.3"))]
        );
        failed.clear();
        learn(
            &mut s,
            "172.31.0.2",
            "10.1.0.0/24",
            path("172.31.0.2", 100, 0),
        );
        assert_eq!(
            sweep(&s, &failed),
            [Change::Replace(net("10.1.0.0/24"), ip("172.31.0.2"))]
        );
    }

    #[test]
    fn a_sweep_goes_on_where_the_learned_routes_changed_between_chunks() {
        let now = Instant::now();
        let mut s = SharedState::default();
        for i in 0..20 {
            learn(
                &mut s,
                "172.31.0.2",
                &format!("10.1.{i}.0/24"),
                path("172.31.0.2", 100, 0),
            );
        }
        let mut installed = Installed::default();
        let mut sweep = Sweep::new(now, true);
        let five = Limits {
            scan: 5,
            changes: 5,
        };
        let changes = sweep
            .next_chunk(&s, &installed, &BTreeMap::new(), five)
            .unwrap_or_default();
        assert_eq!(changes.len(), 5);
        sweep.installed_new(apply(&mut installed, &changes));
        // A peer that sorts first appears, the cursor's peer goes away:
        // the sweep goes on with the peers after it.
        s.learned.remove(&ip("172.31.0.2"));
        learn(
            &mut s,
            "172.31.0.1",
            "10.2.0.0/24",
            path("172.31.0.1", 100, 0),
        );
        learn(
            &mut s,
            "172.31.0.5",
            "10.3.0.0/24",
            path("172.31.0.5", 100, 0),
        );
        let changes = sweep
            .next_chunk(&s, &installed, &BTreeMap::new(), LIMITS)
            .unwrap_or_default();
        assert_eq!(
            changes,
            [Change::Replace(net("10.3.0.0/24"), ip("172.31.0.5"))]
        );
        sweep.installed_new(apply(&mut installed, &changes));
        // What it counted no longer holds (the routes changed under it):
        // the next sweep, which a changed generation brings, puts it right.
        while let Some(changes) = sweep.next_chunk(&s, &installed, &BTreeMap::new(), LIMITS) {
            sweep.installed_new(apply(&mut installed, &changes));
        }
        sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, five);
        assert_eq!(installed, as_installed(&desired_routes(&s, now)));
    }

    #[test]
    fn installed_walks_ipv4_scattered() {
        let mut i = Installed::default();
        for n in 0..8 {
            i.insert(net(&format!("100.64.0.{n}/32")), Some(ip("172.31.0.2")));
        }
        let order: Vec<String> = i.after(At::Start).map(|(_, p)| p.to_string()).collect();
        assert_eq!(
            order,
            [
                "100.64.0.0/32",
                "100.64.0.4/32",
                "100.64.0.2/32",
                "100.64.0.6/32",
                "100.64.0.1/32",
                "100.64.0.5/32",
                "100.64.0.3/32",
                "100.64.0.7/32"
            ]
        );
    }
}
