//! The BGP listener: one dual-stack socket on the listen port, the TCP MD5
//! keys it expects from each peer, and the thread that hands accepted
//! connections to their peer's session.
//!
//! Invariant: a connection from a peer with a password reaches its session
//! only while that very password is in place on the listener as the
//! peer's key ([`admit`]). A key the kernel did not take (setsockopt
//! failed) is not in place, so the peer's connections are refused at
//! accept — never taken unsigned — until it is.

use std::collections::BTreeMap;
use std::net::{IpAddr, Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Listens on `port` and hands each accepted connection to its peer's
/// session (see [`admit`]) until `stop`; returns a handle to the
/// listening socket, for its keys.
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
    std::thread::Builder::new()
        .name("bgp-listen".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (s, from) = match l.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                // IPv4 peers reach the dual-stack listener as IPv4-mapped
                // IPv6 addresses.
                let addr = from.ip().to_canonical();
                let peers = lock(&peers);
                let h = peers.get(&addr);
                let verdict = {
                    let keys = lock(&keys);
                    admit(h.map(|h| &h.plan), keys.get(&addr).map(String::as_str))
                };
                match (verdict, h) {
                    (Admission::Accept, Some(h)) => {
                        let _ = s.set_nonblocking(false);
                        // A session with a full channel is busy: the peer
                        // tries again.
                        if let Err(TrySendError::Full(Input::Incoming(s))) =
                            h.tx.tx.try_send(Input::Incoming(s))
                        {
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    }
                    (Admission::KeyNotInPlace, _) => {
                        log::warn!(
                            "BGP: refused {from}: its password is not in place on the \
                                 listener (TCP MD5), so the connection may be unsigned"
                        );
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    _ => {
                        log::info!("BGP: refused {from}: not a peer");
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
            }
        })
        .map_err(|e| format!("BGP listener thread: {e}"))?;
    Ok(handle)
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
