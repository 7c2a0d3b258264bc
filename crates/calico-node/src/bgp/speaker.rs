//! The BGP speaker's threads: a listener (`listener.rs`), one thread per
//! peer running the pure [`calico_bgp::fsm::Session`] (plus a reader thread
//! per connection that decodes and hands messages over), and the route
//! programmer.
//!
//! ```text
//!  listener ──accepted socket──▶ peer thread ◀──decoded messages── reader thread
//!                                 │  fsm.step(event) → actions: connect,
//!                                 │  send, timers, routes in/out
//!                                 ▼
//!                         Shared { rib: calico_bgp::rib::Rib, status }
//!                                 │ changed
//!                                 ▼
//!                         programmer thread (routes.rs) ──netlink──▶ kernel (proto 81, metric 32)
//! ```
//!
//! Everything a peer thread does is driven by one channel: accepted
//! connections, messages and read errors from its reader, export changes
//! and stop; timers are deadlines it waits on with `recv_timeout`. The
//! channel is bounded ([`CHANNEL_BOUND`]): a reader that gets ahead of its
//! session waits (and so does the peer, over TCP); the listener drops a
//! connection it cannot hand over, and hands over at most
//! [`listener::MAX_PENDING_PER_SOURCE`] a peer at once; export changes are
//! one flag, sent at most once until the session has seen it.
//!
//! What a peer sends goes through its import rules (a rejected prefix is
//! not kept, see [`super::filter`]); a peer holding more than its
//! `max_prefixes` is sent a Cease (Maximum Number of Prefixes Reached) and
//! its routes go. What is learned, the best paths, reflection and what
//! each peer is sent are [`calico_bgp::rib`]'s (pure); `rib.rs` moves its
//! events and UPDATEs.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use calico_bgp::fsm::{self, Action, Event, Session, State, Timer};
use calico_bgp::msg::{Afi, Message};
use calico_bgp::rib::{AdjRibOut, Rib, RibEvent};
use calico_bgp::wire::{self, Context};

use super::filter::Local;
use super::listener::{self, Keys};
use super::plan::{LogLevel, PeerKind, PeerPlan, Plan};

mod rib;

pub use calico_bgp::rib::{AdjRibIn, Path};

/// What `calicoctl node status` shows for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub kind: PeerKind,
    pub state: State,
    pub since: SystemTime,
    pub info: String,
}

/// State shared by the speaker's threads.
#[derive(Debug, Default)]
pub struct SharedState {
    /// Identity, own routes, and the routes each peer sent.
    pub rib: Rib,
    /// This node's IPv6 address: next hop of its IPv6 routes.
    pub ipv6: Option<Ipv6Addr>,
    /// `logSeverityScreen`.
    pub log: LogLevel,
    /// This node's IPv4 subnet (IP-in-IP `CrossSubnet`).
    pub subnet: Option<ipnet::Ipv4Net>,
    /// Pools (learned routes into encapsulated pools are not installed).
    pub pools: Vec<super::plan::BgpPool>,
    /// What learned routes may not take over in the kernel.
    pub local: Local,
    pub status: BTreeMap<IpAddr, PeerStatus>,
    /// Bumped on every change the programmer must look at.
    pub generation: u64,
    /// This process found BGP routes of an earlier run in the kernel: it
    /// restarted with its forwarding state (the R and F bits of graceful
    /// restart), and keeps those routes until its peers have re-sent theirs.
    pub restarted: bool,
}

#[derive(Debug, Default)]
pub struct Shared {
    pub state: Mutex<SharedState>,
    pub changed: Condvar,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut SharedState) -> R) -> R {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let r = f(&mut s);
        s.generation += 1;
        self.changed.notify_all();
        r
    }

    /// A copy of the peers' status.
    pub fn status(&self) -> Vec<PeerStatus> {
        match self.state.lock() {
            Ok(s) => s.status.values().cloned().collect(),
            Err(p) => p.into_inner().status.values().cloned().collect(),
        }
    }
}

pub(super) enum Input {
    /// A connection the listener accepted from this peer, with its place
    /// among the peer's pending connections (given back once taken).
    Incoming(TcpStream, listener::Slot),
    /// From the reader of connection `generation`.
    Read(u64, Box<Event>),
    /// Exports changed: advertise the difference.
    Exports,
    Stop,
}

/// Inputs a peer thread's channel holds at most.
pub const CHANNEL_BOUND: usize = 64;

/// The sending side of a peer thread's channel.
#[derive(Clone)]
pub(super) struct PeerTx {
    pub(super) tx: SyncSender<Input>,
    /// Exports changed and the thread has not looked yet.
    exports: Arc<AtomicBool>,
}

impl PeerTx {
    /// Tells the thread that exports (or what it reflects) changed: one
    /// wake-up until it has looked, never a wait.
    fn exports_changed(&self) {
        if !self.exports.swap(true, Ordering::AcqRel) {
            match self.tx.try_send(Input::Exports) {
                // A full channel wakes the thread anyway, and it looks at
                // the flag after each input.
                Ok(()) | Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

pub(super) struct PeerHandle {
    pub(super) plan: PeerPlan,
    pub(super) tx: PeerTx,
    thread: Option<JoinHandle<()>>,
}

/// The speaker: owns the threads; [`Speaker::configure`] brings it to a plan.
pub struct Speaker {
    shared: Arc<Shared>,
    peers: Arc<Mutex<BTreeMap<IpAddr, PeerHandle>>>,
    /// Every peer thread's channel, for a route reflector's threads to tell
    /// the others that routes changed (never locked while joining).
    senders: Senders,
    listener: Option<(u16, Arc<std::sync::atomic::AtomicBool>)>,
    /// The listening socket (a handle), for its MD5 keys.
    listening: Option<TcpListener>,
    /// MD5 keys in place on the listener, by peer.
    keys: Keys,
    /// Keys that could not be set, as last logged.
    key_errors: BTreeMap<IpAddr, String>,
    identity: Option<(Ipv4Addr, u32)>,
}

type Senders = Arc<Mutex<BTreeMap<IpAddr, PeerTx>>>;

impl Speaker {
    pub fn new(shared: Arc<Shared>) -> Speaker {
        Speaker {
            shared,
            peers: Arc::default(),
            senders: Arc::default(),
            listener: None,
            listening: None,
            keys: Keys::default(),
            key_errors: BTreeMap::new(),
            identity: None,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Brings listener, sessions and exports in line with `plan`.
    pub fn configure(&mut self, plan: &Plan) -> Result<(), String> {
        let identity = (plan.router_id, plan.local_as);
        if self.identity.is_some_and(|i| i != identity) {
            // A new router id or AS: every session starts over.
            self.stop_all();
        }
        self.identity = Some(identity);
        if self.listener.as_ref().map(|l| l.0) != Some(plan.listen_port) {
            if let Some((_, stop)) = self.listener.take() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            lock(&self.keys).clear();
            self.key_errors.clear();
            self.listening = Some(listener::spawn(
                plan.listen_port,
                stop.clone(),
                self.peers.clone(),
                self.keys.clone(),
            )?);
            self.listener = Some((plan.listen_port, stop));
        }
        self.set_listener_keys(plan);
        let mut exports_changed = self.shared.with(|s| {
            let out = s.rib.apply(RibEvent::Local {
                local_as: plan.local_as,
                router_id: plan.router_id,
                cluster_id: plan.cluster_id,
                exports: plan.exports.clone(),
                communities: plan.communities.clone(),
                ebgp_passed_on: plan
                    .pools
                    .iter()
                    .filter(|p| !p.disable_export)
                    .map(|p| p.cidr)
                    .collect(),
            });
            let changed = out.readvertise || s.ipv6 != plan.ipv6;
            s.ipv6 = plan.ipv6;
            s.subnet = plan.subnet;
            s.log = plan.log;
            s.pools = plan.pools.clone();
            s.local = plan.local.clone();
            s.status.retain(|a, _| plan.peers.contains_key(a));
            changed
        });
        let mut peers = lock(&self.peers);
        let gone: Vec<IpAddr> = peers
            .iter()
            .filter(|(a, h)| plan.peers.get(a) != Some(&h.plan))
            .map(|(a, _)| *a)
            .collect();
        for a in gone {
            lock(&self.senders).remove(&a);
            if let Some(mut h) = peers.remove(&a) {
                let _ = h.tx.tx.send(Input::Stop);
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
            }
            // On a route reflector the others no longer pass its routes on.
            exports_changed |= self.shared.with(|s| {
                if plan.peers.contains_key(&a) {
                    return false;
                }
                s.status.remove(&a);
                s.rib.apply(RibEvent::PeerRemoved { peer: a }).readvertise
            });
        }
        for (a, p) in &plan.peers {
            if peers.contains_key(a) {
                if exports_changed && let Some(h) = peers.get(a) {
                    h.tx.exports_changed();
                }
                continue;
            }
            let (tx, rx) = mpsc::sync_channel(CHANNEL_BOUND);
            let tx = PeerTx {
                tx,
                exports: Arc::default(),
            };
            let cfg = fsm::Config {
                local_as: plan.local_as,
                peer_as: p.asn,
                router_id: plan.router_id,
                hold_time: 240,
                keepalive: p.keepalive,
                connect_retry: 5,
                passive: p.passive,
                // One family per session, that of the peer's address.
                families: vec![family(*a)],
                graceful_restart: Some(p.restart_time),
                restarting: lock(&self.shared.state).restarted,
            };
            let peer = PeerThread {
                plan: p.clone(),
                session: Session::new(cfg),
                shared: self.shared.clone(),
                tx: tx.clone(),
                rx,
                conn: None,
                generation: 0,
                timers: HashMap::new(),
                ctx: Context::default(),
                advertised: BTreeMap::new(),
                senders: self.senders.clone(),
                last_peer_restart: None,
            };
            self.shared.with(|s| {
                s.status.insert(
                    *a,
                    PeerStatus {
                        address: *a,
                        kind: p.kind,
                        state: State::Idle,
                        since: SystemTime::now(),
                        info: String::new(),
                    },
                );
                s.rib.apply(RibEvent::PeerConfigured {
                    peer: *a,
                    rr_client: p.rr_client,
                });
            });
            let thread = std::thread::Builder::new()
                .name(format!("bgp-{a}"))
                .spawn(move || peer.run())
                .map_err(|e| format!("BGP peer thread: {e}"))?;
            lock(&self.senders).insert(*a, tx.clone());
            peers.insert(
                *a,
                PeerHandle {
                    plan: p.clone(),
                    tx,
                    thread: Some(thread),
                },
            );
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        lock(&self.senders).clear();
        let mut peers = lock(&self.peers);
        for (_, mut h) in std::mem::take(&mut *peers) {
            let _ = h.tx.tx.send(Input::Stop);
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// The listener expects each peer's password (TCP MD5), and no other;
    /// a peer whose key could not be set is refused at accept until it is
    /// (see [`listener::admit`]).
    fn set_listener_keys(&mut self, plan: &Plan) {
        let Some(l) = &self.listening else { return };
        let want: BTreeMap<IpAddr, String> = plan
            .peers
            .iter()
            .filter_map(|(a, p)| Some((*a, p.password.clone()?)))
            .collect();
        let failed: BTreeMap<IpAddr, String> = listener::set_keys(l, &self.keys, &want)
            .into_iter()
            .collect();
        for (a, e) in &failed {
            if self.key_errors.get(a) != Some(e) {
                log::error!(
                    "BGP: cannot set the password (TCP MD5 key) for {a} on the listener: {e}; \
                         connections from {a} are refused until it is in place"
                );
            }
        }
        self.key_errors = failed;
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop_all();
        if let Some((_, stop)) = self.listener.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

struct PeerThread {
    plan: PeerPlan,
    session: Session,
    shared: Arc<Shared>,
    tx: PeerTx,
    rx: Receiver<Input>,
    conn: Option<TcpStream>,
    generation: u64,
    timers: HashMap<Timer, Instant>,
    ctx: Context,
    /// What the peer has from us.
    advertised: AdjRibOut,
    senders: Senders,
    /// The peer's graceful restart time from the last negotiation.
    last_peer_restart: Option<u16>,
}

impl PeerThread {
    fn run(mut self) {
        let mut pending = vec![Event::Start];
        loop {
            while let Some(e) = (!pending.is_empty()).then(|| pending.remove(0)) {
                let actions = self.session.step(e);
                for a in actions {
                    if let Some(e) = self.act(a) {
                        pending.push(e);
                    }
                }
            }
            self.set_status();
            let now = Instant::now();
            let next = self.timers.values().min().copied();
            let wait = next.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(now)
            });
            match self.rx.recv_timeout(wait) {
                Ok(Input::Incoming(s, _slot)) => {
                    if self.session.accepts_connection() {
                        self.attach(s);
                        pending.push(Event::Connected);
                    } else {
                        // One session per peer (the mesh has one connecting side).
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
                Ok(Input::Read(generation, e)) => {
                    if generation == self.generation && self.conn.is_some() {
                        pending.push(*e);
                    }
                }
                // Looked at below.
                Ok(Input::Exports) => {}
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    for a in self.session.step(Event::Stop) {
                        self.act(a);
                    }
                    // (`configure`, which stopped it, tells the others.)
                    self.shared.with(|s| {
                        s.rib.apply(RibEvent::PeerRemoved {
                            peer: self.plan.address,
                        })
                    });
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    let due: Vec<Timer> = self
                        .timers
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(t, _)| *t)
                        .collect();
                    for t in due {
                        self.timers.remove(&t);
                        pending.push(Event::Timer(t));
                    }
                }
            }
            if self.tx.exports.swap(false, Ordering::AcqRel) {
                self.advertise(false);
            }
        }
    }

    fn set_status(&self) {
        let state = self.session.state();
        let info = match (state, self.session.last_error()) {
            (State::Established, _) => "Established".to_string(),
            (_, Some(e)) => format!("{}: {e}", state.name()),
            _ => state.name().to_string(),
        };
        let address = self.plan.address;
        let kind = self.plan.kind;
        let mut st = lock(&self.shared.state);
        let entry = st.status.entry(address).or_insert_with(|| PeerStatus {
            address,
            kind,
            state,
            since: SystemTime::now(),
            info: info.clone(),
        });
        if entry.state != state {
            entry.since = SystemTime::now();
        }
        entry.state = state;
        entry.info = info;
    }

    /// Uses `s` as the connection, with a reader thread feeding this thread.
    fn attach(&mut self, s: TcpStream) {
        if let Some(old) = self.conn.take() {
            let _ = old.shutdown(Shutdown::Both);
        }
        self.generation += 1;
        let _ = s.set_nodelay(true);
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        if let Ok(reader) = s.try_clone() {
            let tx = self.tx.tx.clone();
            let generation = self.generation;
            let _ = std::thread::Builder::new()
                .name(format!("bgp-read-{}", self.plan.address))
                .spawn(move || read_loop(reader, generation, tx));
        }
        self.conn = Some(s);
    }

    /// Carries out one action; may produce an event to feed back.
    fn act(&mut self, a: Action) -> Option<Event> {
        match a {
            Action::Connect => {
                let to = SocketAddr::new(self.plan.address, self.plan.port);
                let md5 = self.plan.password.as_deref().map(str::as_bytes);
                match calico_sys::connect(to, self.plan.source_address, md5, Duration::from_secs(2))
                {
                    Ok(s) => {
                        self.attach(s);
                        Some(Event::Connected)
                    }
                    Err(_) => Some(Event::ConnectionLost),
                }
            }
            Action::Disconnect => {
                if let Some(c) = self.conn.take() {
                    let _ = c.shutdown(Shutdown::Both);
                }
                self.generation += 1;
                None
            }
            Action::Send(m) => self.send(&m).err().map(|_| Event::ConnectionLost),
            Action::Arm(t, secs) => {
                self.timers
                    .insert(t, Instant::now() + Duration::from_secs(u64::from(secs)));
                None
            }
            Action::Disarm(t) => {
                self.timers.remove(&t);
                None
            }
            Action::Up(n) => {
                self.ctx = Context { asn4: n.asn4 };
                let (address, id, client) =
                    (self.plan.address, n.peer_router_id, self.plan.rr_client);
                self.shared.with(|s| {
                    s.rib.apply(RibEvent::PeerUp {
                        peer: address,
                        router_id: id,
                        rr_client: client,
                    })
                });
                self.last_peer_restart = n
                    .peer_graceful_restart
                    .as_ref()
                    .map(|g| g.restart_time)
                    .filter(|t| *t > 0);
                self.note(
                    LogLevel::States,
                    log::Level::Info,
                    &format!("BGP: session with {} established", self.plan.address),
                );
                self.advertised.clear();
                self.advertise(true);
                None
            }
            Action::Received(u) => {
                let (over, out) = self.receive(u);
                self.tell_others(out);
                over
            }
            Action::RefreshRequested(_) => {
                self.advertised.clear();
                self.advertise(true);
                None
            }
            Action::Down { reason, graceful } => {
                self.note(
                    LogLevel::States,
                    log::Level::Warn,
                    &format!("BGP: session with {} down: {reason}", self.plan.address),
                );
                self.ctx = Context::default();
                self.advertised.clear();
                let restart = graceful.then_some(self.last_peer_restart).flatten();
                let address = self.plan.address;
                let stale_until =
                    restart.map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
                let out = self.shared.with(|s| {
                    s.rib.apply(RibEvent::PeerDown {
                        peer: address,
                        stale_until,
                    })
                });
                self.tell_others(out);
                None
            }
        }
    }

    /// Logs `msg` when `logSeverityScreen` lets messages of `level` through.
    fn note(&self, level: LogLevel, severity: log::Level, msg: &str) {
        if lock(&self.shared.state).log >= level {
            log::log!(severity, peer:% = self.plan.address; "{msg}");
        }
    }

    fn send(&mut self, m: &Message) -> std::io::Result<()> {
        let Some(c) = self.conn.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        let bytes = wire::encode(m, &self.ctx).map_err(std::io::Error::other)?;
        c.write_all(&bytes)
    }
}

/// The address family of a session with `peer`.
fn family(peer: IpAddr) -> Afi {
    match peer {
        IpAddr::V4(_) => Afi::Ipv4,
        IpAddr::V6(_) => Afi::Ipv6,
    }
}

/// Reads and decodes messages from `s` and hands them to the session; a
/// session that is behind makes it wait (the channel is bounded).
fn read_loop(mut s: TcpStream, generation: u64, tx: SyncSender<Input>) {
    let mut buf: Vec<u8> = Vec::with_capacity(65536);
    let mut chunk = vec![0u8; 65536];
    let mut ctx = Context::default();
    loop {
        loop {
            match wire::decode(&buf, &ctx) {
                Ok(Some((m, used))) => {
                    buf.drain(..used);
                    if let Message::Open(o) = &m {
                        // We always send the 4-octet AS capability.
                        ctx.asn4 = o.four_octet_as().is_some();
                    }
                    if tx
                        .send(Input::Read(generation, Box::new(Event::Message(m))))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Input::Read(generation, Box::new(Event::DecodeError(e))));
                    return;
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Read(generation, Box::new(Event::ConnectionLost)));
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests;
