//! The BGP listener: one dual-stack socket on the listen port, the TCP MD5
//! keys it expects from each peer, and the thread that hands accepted
//! connections to their peer's session.
//!
//! Invariant: a connection from a peer with a password reaches its session
//! only while that very password is in place on the listener as the
//! peer's key ([`admit`]). A key the kernel did not take (setsockopt
//! failed) is not in place, so the peer's connections are refused at
//! accept — never taken unsigned — until it is.
//!
//! Against floods: the thread waits for connections in epoll and does no
//! I/O on them; one from an address that is no peer is closed at once,
//! before anything is read; at most [`MAX_PENDING_PER_SOURCE`] connections
//! of one peer wait for its session; refusals are logged a few at a time,
//! then counted (`calico_log::limited!`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::plan::PeerPlan;
use super::speaker::{Input, PeerHandle, lock};

/// The MD5 keys in place on the listener, by peer (IPv4 peers by their
/// IPv4 address): shared by the speaker, which sets them, and the
/// accepting thread, which checks them.
pub type Keys = Arc<Mutex<BTreeMap<IpAddr, String>>>;

/// What becomes of a connection the listener accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handed to the peer's session.
    Accept,
    /// Closed: the address is not a configured peer.
    NotAPeer,
    /// Closed: the peer has a password whose key is not in place on the
    /// listener, so the connection may not have been signed.
    KeyNotInPlace,
}

/// Whether a connection from a peer (its plan, `None` for no peer) may go
/// to its session, given the key in place on the listener for its address.
pub fn admit(peer: Option<&PeerPlan>, key_in_place: Option<&str>) -> Admission {
    match peer {
        None => Admission::NotAPeer,
        Some(p) => match p.password.as_deref() {
            None => Admission::Accept,
            Some(pw) if key_in_place == Some(pw) => Admission::Accept,
            Some(_) => Admission::KeyNotInPlace,
        },
    }
}

/// Brings the listener's keys to `want` (peer → password): sets the keys
/// that are missing or changed, removes those no longer wanted, and
/// records in `keys` only what the kernel took. Returns one message per
/// key that could not be set (its peer's connections stay refused).
pub fn set_keys(
    l: &TcpListener,
    keys: &Keys,
    want: &BTreeMap<IpAddr, String>,
) -> Vec<(IpAddr, String)> {
    let mut failed = Vec::new();
    let mut have = lock(keys);
    for (a, key) in want {
        if have.get(a) == Some(key) {
            continue;
        }
        // Until the new key is known to be in place, the old one does not
        // count either.
        have.remove(a);
        match calico_sys::listener_md5(l, *a, key.as_bytes()) {
            Ok(()) => {
                have.insert(*a, key.clone());
            }
            Err(e) => failed.push((*a, e.to_string())),
        }
    }
    let gone: Vec<IpAddr> = have
        .keys()
        .filter(|a| !want.contains_key(a))
        .copied()
        .collect();
    for a in gone {
        let _ = calico_sys::listener_md5(l, a, b"");
        have.remove(&a);
    }
    failed
}

/// Connections from one address handed to its session and not yet taken
/// by it: more are closed at once, so that one source cannot fill its
/// session's channel (which also carries what its reader decoded).
pub const MAX_PENDING_PER_SOURCE: usize = 4;

/// How long the accepting thread waits for a connection before it looks
/// at its stop flag again. Connections are taken as they arrive (the wait
/// is epoll's, not a poll): this bounds only how long a stopped listener
/// lingers.
const WAKE_EVERY: Duration = Duration::from_millis(200);

/// How often the counts of refusals not logged are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

// Keys of the listener's rate-limited lines (see `calico_log::limited!`).
const NOT_A_PEER: &str = "BGP: refused a connection: not a peer";
const KEY_NOT_IN_PLACE: &str = "BGP: refused a connection: its password is not in place";
const BUSY: &str = "BGP: refused a connection: its session has connections waiting";
const ACCEPT_FAILED: &str = "BGP: accept failed";

/// Connections handed to sessions and not yet taken, by source address
/// (only addresses with some: at most [`MAX_PENDING_PER_SOURCE`] for each
/// configured peer).
#[derive(Debug, Clone, Default)]
pub struct Pending(Arc<Mutex<BTreeMap<IpAddr, usize>>>);

/// One connection's place among its source's pending ones, given back when
/// dropped (when the session has taken the connection, or it was closed).
#[derive(Debug)]
pub struct Slot {
    pending: Pending,
    addr: IpAddr,
}

impl Pending {
    /// A place for one more connection from `addr`, unless it has
    /// [`MAX_PENDING_PER_SOURCE`] already.
    pub fn take(&self, addr: IpAddr) -> Option<Slot> {
        let mut m = lock(&self.0);
        let n = m.entry(addr).or_insert(0);
        if *n >= MAX_PENDING_PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(Slot {
            pending: self.clone(),
            addr,
        })
    }

    /// Connections from `addr` pending.
    pub fn count(&self, addr: IpAddr) -> usize {
        lock(&self.0).get(&addr).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = lock(&self.pending.0);
        if let Some(n) = m.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
}

/// Listens on `port` and hands each accepted connection to its peer's
/// session (see [`admit`]) until `stop`; returns a handle to the
/// listening socket, for its keys.
///
/// The accepting thread waits in epoll (a current-thread tokio runtime of
/// its own) and does no I/O on what it accepts: a connection from an
/// address that is no peer is closed at once, before anything is read, and
/// a peer's goes to its session unless [`MAX_PENDING_PER_SOURCE`] of its
/// connections wait there already. So a flood from anywhere costs an
/// accept and a close per connection, and a peer reconnecting after a flap
/// is taken as soon as the kernel has it. Refusals are logged through
/// `calico_log::limited!`: a few lines, then a count.
pub(super) fn spawn(
    port: u16,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<BTreeMap<IpAddr, PeerHandle>>>,
    keys: Keys,
) -> Result<TcpListener, String> {
    let l = calico_sys::listen_any(port)
        .map_err(|e| format!("BGP: cannot listen on port {port}: {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("BGP listener: {e}"))?;
    let handle = l.try_clone().map_err(|e| format!("BGP listener: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("BGP listener runtime: {e}"))?;
    std::thread::Builder::new()
        .name("bgp-listen".into())
        .spawn(move || rt.block_on(accept_loop(l, stop, peers, keys)))
        .map_err(|e| format!("BGP listener thread: {e}"))?;
    Ok(handle)
}

async fn accept_loop(
    l: TcpListener,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<BTreeMap<IpAddr, PeerHandle>>>,
    keys: Keys,
) {
    let l = match tokio::net::TcpListener::from_std(l) {
        Ok(l) => l,
        Err(e) => {
            log::error!("BGP listener: {e}");
            return;
        }
    };
    let pending = Pending::default();
    let mut flushed = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if flushed.elapsed() >= FLUSH_EVERY {
            calico_log::flush_limited(log::Level::Info);
            flushed = Instant::now();
        }
        let (s, from) = match tokio::time::timeout(WAKE_EVERY, l.accept()).await {
            Err(_) => continue,
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                // Out of file descriptors and the like: the connection
                // stays queued; wait a little rather than spin on it.
                calico_log::limited!(ACCEPT_FAILED, log::Level::Warn, "BGP: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(s) = s.into_std() else { continue };
        dispatch(s, from, &peers, &keys, &pending);
    }
}

/// Hands `s` to its peer's session, or closes it (see [`spawn`]).
fn dispatch(
    s: TcpStream,
    from: SocketAddr,
    peers: &Mutex<BTreeMap<IpAddr, PeerHandle>>,
    keys: &Keys,
    pending: &Pending,
) {
    // IPv4 peers reach the dual-stack listener as IPv4-mapped IPv6
    // addresses.
    let addr = from.ip().to_canonical();
    let peers = lock(peers);
    let h = peers.get(&addr);
    let verdict = {
        let keys = lock(keys);
        admit(h.map(|h| &h.plan), keys.get(&addr).map(String::as_str))
    };
    match (verdict, h) {
        (Admission::Accept, Some(h)) => {
            let Some(slot) = pending.take(addr) else {
                calico_log::limited!(
                    BUSY,
                    log::Level::Warn,
                    "BGP: refused {from}: {MAX_PENDING_PER_SOURCE} of its connections wait for \
                     its session already"
                );
                let _ = s.shutdown(Shutdown::Both);
                return;
            };
            let _ = s.set_nonblocking(false);
            // A session with a full channel is busy: the peer tries again.
            if let Err(TrySendError::Full(Input::Incoming(s, _))) =
                h.tx.tx.try_send(Input::Incoming(s, slot))
            {
                calico_log::limited!(
                    BUSY,
                    log::Level::Warn,
                    "BGP: refused {from}: its session is busy"
                );
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        (Admission::KeyNotInPlace, _) => {
            calico_log::limited!(
                KEY_NOT_IN_PLACE,
                log::Level::Warn,
                "BGP: refused {from}: its password is not in place on the listener (TCP MD5), \
                 so the connection may be unsigned"
            );
            let _ = s.shutdown(Shutdown::Both);
        }
        _ => {
            calico_log::limited!(
                NOT_A_PEER,
                log::Level::Info,
                "BGP: refused {from}: not a peer"
            );
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::plan::PeerKind;

    fn peer(password: Option<&str>) -> PeerPlan {
        PeerPlan {
            address: "172.31.0.254".parse().unwrap(),
            port: 179,
            asn: 65001,
            kind: PeerKind::Global,
            passive: false,
            keep_original_next_hop: false,
            restart_time: 120,
            calico_node: false,
            password: password.map(str::to_string),
            source_address: None,
            keepalive: None,
            rr_client: false,
            import: Default::default(),
            export: Default::default(),
            max_prefixes: 1000,
        }
    }

    #[test]
    fn a_peer_with_a_password_is_admitted_only_with_that_key_in_place() {
        use Admission::*;
        // (a peer with that password, or none; the key in place; verdict)
        type Case = (
            Option<Option<&'static str>>,
            Option<&'static str>,
            Admission,
        );
        let table: &[Case] = &[
            (None, None, NotAPeer),
            (None, Some("s3cret"), NotAPeer),
            (Some(None), None, Accept),
            // A key left over from an earlier password: the kernel asks
            // for MD5, which is stricter, never looser.
            (Some(None), Some("old"), Accept),
            (Some(Some("s3cret")), Some("s3cret"), Accept),
            // The key failed to install (or was never set): refused.
            (Some(Some("s3cret")), None, KeyNotInPlace),
            // The password changed and the new key did not go in.
            (Some(Some("new")), Some("old"), KeyNotInPlace),
            (Some(Some("")), None, KeyNotInPlace),
        ];
        for (pw, key, want) in table {
            let p = pw.map(peer);
            assert_eq!(
                admit(p.as_ref(), *key),
                *want,
                "password {pw:?}, key {key:?}"
            );
        }
    }

    #[test]
    fn a_source_has_at_most_its_cap_of_pending_connections() {
        let p = Pending::default();
        let a: IpAddr = "172.31.0.254".parse().unwrap();
        let b: IpAddr = "fd00:31::fe".parse().unwrap();
        let mut slots: Vec<Slot> = (0..MAX_PENDING_PER_SOURCE)
            .map(|_| p.take(a).unwrap())
            .collect();
        assert!(p.take(a).is_none(), "one over the cap");
        // Another source has its own.
        let other = p.take(b).unwrap();
        assert_eq!(p.count(b), 1);
        // A connection taken by its session gives its place back.
        slots.pop();
        assert_eq!(p.count(a), MAX_PENDING_PER_SOURCE - 1);
        assert!(p.take(a).is_some());
        drop(slots);
        drop(other);
        assert_eq!(p.count(a), 0);
        assert!(lock(&p.0).is_empty(), "no entry left for idle sources");
    }

    #[test]
    fn a_key_the_kernel_refuses_is_not_recorded_as_in_place() {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            eprintln!("skipped: no loopback listener here");
            return;
        };
        let keys: Keys = Arc::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let long = "k".repeat(calico_sys::MAX_KEY_LEN + 1);
        let want = BTreeMap::from([(a, long)]);
        let failed = set_keys(&l, &keys, &want);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(lock(&keys).is_empty());
        let p = PeerPlan {
            address: a,
            ..peer(Some(&"k".repeat(calico_sys::MAX_KEY_LEN + 1)))
        };
        assert_eq!(
            admit(Some(&p), lock(&keys).get(&a).map(String::as_str)),
            Admission::KeyNotInPlace
        );
        // A key the kernel takes is recorded; one no longer wanted goes.
        let want = BTreeMap::from([(a, "s3cret".to_string())]);
        match set_keys(&l, &keys, &want).as_slice() {
            [] => {
                assert_eq!(lock(&keys).get(&a).map(String::as_str), Some("s3cret"));
                assert_eq!(set_keys(&l, &keys, &BTreeMap::new()), []);
                assert!(lock(&keys).is_empty());
            }
            // A kernel without TCP MD5: nothing recorded either.
            failed => {
                eprintln!("TCP MD5 not available here: {failed:?}");
                assert!(lock(&keys).is_empty());
            }
        }
    }
}
