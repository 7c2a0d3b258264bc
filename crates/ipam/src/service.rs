//! One allocation request as the CNI plugins make it, and its answer, in a
//! form that crosses a process boundary: the plugins can run it themselves
//! or ask the node's long-lived calico-node to (a unix socket, one JSON line
//! each way), which saves every pod the cost of opening the store.
//!
//! [`serve`] is the request's meaning, shared by both paths: what the handle
//! already holds, else the specific addresses (all or none; one the handle
//! already holds counts as done), else one per wanted family from the pools.
//!
//! Over the socket a request travels in an [`Envelope`] with the client's
//! deadline and its host IPAM lock file. A client that stops waiting does
//! the work itself under that lock, so the server ([`answer_envelope`])
//! drops a request whose deadline has passed (answer `expired`) and runs
//! the others under the same lock: the two never run at once, and a late
//! request is never carried out after the client gave up on it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::allocator::{AssignArgs, AssignedIp, Ipam, IpamError, Use};
use crate::hostlock;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Request {
    /// Assign addresses to a pod's handle (idempotent per handle).
    Assign {
        /// Which store the caller means (the server refuses another).
        store: String,
        handle: String,
        node: String,
        attrs: BTreeMap<String, String>,
        specific: Option<Vec<IpAddr>>,
        num_v4: usize,
        num_v6: usize,
        v4_pools: Vec<String>,
        v6_pools: Vec<String>,
    },
    /// Release everything a handle holds.
    Release { store: String, handle: String },
}

impl Request {
    pub fn store(&self) -> &str {
        match self {
            Request::Assign { store, .. } | Request::Release { store, .. } => store,
        }
    }
}

/// A request as sent over the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What to do.
    #[serde(flatten)]
    pub request: Request,
    /// When the client stops waiting (wall-clock milliseconds since the
    /// Unix epoch: client and server share the host's clock); from then on
    /// the client may do the work itself, so the server must not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The host IPAM lock file the client takes when it does the work
    /// itself; the server takes the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_file: Option<PathBuf>,
}

/// The longest request line the server reads (16 KiB: a plugin's request
/// is a few hundred bytes; a line this long is at most 16 MiB over the
/// server's 1,024 connections).
pub const MAX_REQUEST: usize = 16 * 1024;

/// The most addresses of one family a request may ask for (a pod asks for
/// one).
pub const MAX_ADDRESSES: usize = 256;

/// The longest the server waits for the client's IPAM lock, whatever the
/// request's deadline says (the plugins wait 60 s for an answer).
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Why a request line was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("bad request: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad request: asks for {0} addresses of one family, at most {MAX_ADDRESSES}")]
    TooMany(usize),
}

/// Decodes one request line (without its newline): at most
/// [`MAX_REQUEST`] bytes of JSON (nested no deeper than serde_json's
/// limit of 128), asking for at most [`MAX_ADDRESSES`] per family.
pub fn decode_envelope(line: &[u8]) -> Result<Envelope, DecodeError> {
    if line.len() > MAX_REQUEST {
        return Err(DecodeError::TooLong);
    }
    let env: Envelope = serde_json::from_slice(line)?;
    if let Request::Assign {
        num_v4,
        num_v6,
        specific,
        ..
    } = &env.request
    {
        let specific = specific.as_ref().map_or(0, Vec::len);
        if let Some(n) = [*num_v4, *num_v6, specific]
            .into_iter()
            .find(|n| *n > MAX_ADDRESSES)
        {
            return Err(DecodeError::TooMany(n));
        }
    }
    Ok(env)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Envelope {
    /// `request` with a deadline `budget` from now and the client's lock.
    pub fn new(request: Request, budget: Duration, lock_file: Option<PathBuf>) -> Envelope {
        let budget = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        Envelope {
            request,
            deadline_ms: Some(now_ms().saturating_add(budget)),
            lock_file,
        }
    }

    /// Whether the client has stopped waiting at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.deadline_ms.is_some_and(|d| now_ms >= d)
    }

    /// How long from `now_ms` the client still waits (`None`: no deadline).
    pub fn remaining(&self, now_ms: u64) -> Option<Duration> {
        self.deadline_ms
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms)))
    }
}

/// What kind of failure, so the client can map it to its CNI error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureClass {
    /// Bad pools in the request (CNI code 7).
    Config,
    /// Try again later (CNI code 11).
    Transient,
    /// Anything else (CNI code 100).
    Other,
    /// The server serves another store: the client must do it itself.
    WrongStore,
    /// The request's deadline passed before the server carried it out
    /// (nothing was done): the client must do it itself.
    Expired,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    Ok {
        ips: Vec<IpAddr>,
    },
    Failed {
        class: FailureClass,
        message: String,
    },
}

/// The class of an allocator error.
pub fn classify(e: &IpamError) -> FailureClass {
    if e.is_transient() {
        return FailureClass::Transient;
    }
    match e {
        IpamError::PoolNotFound(_)
        | IpamError::PoolDisabled(_)
        | IpamError::PoolFamily(..)
        | IpamError::PoolUse { .. } => FailureClass::Config,
        _ => FailureClass::Other,
    }
}

/// Carries out `r` (the caller holds whatever lock serialises allocation
/// on this host).
pub fn serve(ipam: &Ipam, r: &Request) -> Result<Vec<IpAddr>, IpamError> {
    match r {
        Request::Release { handle, .. } => ipam.release_by_handle(handle),
        Request::Assign {
            handle,
            node,
            attrs,
            specific,
            num_v4,
            num_v6,
            v4_pools,
            v6_pools,
            ..
        } => {
            let existing = ipam.ips_by_handle(handle)?;
            if !existing.is_empty() {
                return Ok(existing);
            }
            if let Some(specific) = specific {
                // On failure, give back only what this call added: an
                // address the handle already held is another call's (the
                // same pod's request, carried out first).
                let mut added = Vec::new();
                for ip in specific {
                    match ipam.assign_ip(*ip, handle, attrs, node, Use::Workload) {
                        Ok(AssignedIp::New) => added.push(*ip),
                        Ok(AssignedIp::AlreadyHeld) => {}
                        Err(e) => {
                            if !added.is_empty() {
                                let _ = ipam.release_ips(&added);
                            }
                            return Err(e);
                        }
                    }
                }
                return Ok(specific.clone());
            }
            let got = ipam.auto_assign(&AssignArgs {
                handle: handle.clone(),
                node: node.clone(),
                num_v4: *num_v4,
                num_v6: *num_v6,
                v4_pools: v4_pools.clone(),
                v6_pools: v6_pools.clone(),
                attrs: attrs.clone(),
                use_: Use::Workload,
            })?;
            Ok(got.v4.into_iter().chain(got.v6).collect())
        }
    }
}

/// The answer to `r` as the server sends it.
pub fn answer(ipam: &Ipam, own_store: &str, r: &Request) -> Response {
    if r.store() != own_store {
        return Response::Failed {
            class: FailureClass::WrongStore,
            message: format!("this server serves {own_store}, not {}", r.store()),
        };
    }
    match serve(ipam, r) {
        Ok(ips) => Response::Ok { ips },
        Err(e) => Response::Failed {
            class: classify(&e),
            message: e.to_string(),
        },
    }
}

/// The server's answer to `env`: another store is refused; an expired
/// request is dropped (`expired`, nothing done); otherwise the client's
/// host IPAM lock is taken, waiting no longer than the client does (nor
/// than [`MAX_LOCK_WAIT`]), and the
/// deadline checked again before the request is carried out. A lock file
/// that cannot be opened at all (missing directory, refused) cannot be
/// taken by the client either, so no fallback can be running: the request
/// is then served without it.
pub fn answer_envelope(ipam: &Ipam, own_store: &str, env: &Envelope) -> Response {
    let expired = || Response::Failed {
        class: FailureClass::Expired,
        message: "the request's deadline passed before it was served".into(),
    };
    if env.request.store() != own_store {
        return answer(ipam, own_store, &env.request);
    }
    if env.expired(now_ms()) {
        return expired();
    }
    let _lock = match &env.lock_file {
        Some(path) => {
            let wait = env
                .remaining(now_ms())
                .unwrap_or(hostlock::DEFAULT_WAIT)
                .min(MAX_LOCK_WAIT);
            match hostlock::acquire_until(path, Instant::now() + wait) {
                Ok(l) => Some(l),
                Err(e) if e.is_timeout() => return expired(),
                Err(_) => None,
            }
        }
        None => None,
    };
    if env.expired(now_ms()) {
        return expired();
    }
    answer(ipam, own_store, &env.request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let r = Request::Assign {
            store: "local:/x".into(),
            handle: "net.c1".into(),
            node: "n".into(),
            attrs: BTreeMap::from([("pod".into(), "p".into())]),
            specific: None,
            num_v4: 1,
            num_v6: 0,
            v4_pools: vec!["a".into()],
            v6_pools: vec![],
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"op\":\"assign\""), "{j}");
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
        let a = Response::Failed {
            class: FailureClass::Transient,
            message: "busy".into(),
        };
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&j).unwrap(), a);
    }

    #[test]
    fn decode_refuses_long_deep_and_greedy_requests() {
        let env = Envelope::new(
            Request::Release {
                store: "s".into(),
                handle: "h".into(),
            },
            Duration::from_secs(1),
            None,
        );
        let line = serde_json::to_vec(&env).unwrap();
        assert_eq!(decode_envelope(&line).unwrap(), env);
        let long = vec![b' '; MAX_REQUEST + 1];
        assert!(matches!(decode_envelope(&long), Err(DecodeError::TooLong)));
        let mut deep = br#"{"op":"release","store":"s","handle":"h","x":"#.to_vec();
        deep.extend(std::iter::repeat_n(b'[', 5000));
        deep.extend(std::iter::repeat_n(b']', 5000));
        deep.push(b'}');
        let e = decode_envelope(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
        let greedy = Request::Assign {
            store: "s".into(),
            handle: "h".into(),
            node: "n".into(),
            attrs: BTreeMap::new(),
            specific: None,
            num_v4: 1_000_000_000,
            num_v6: 0,
            v4_pools: vec![],
            v6_pools: vec![],
        };
        let greedy =
            serde_json::to_vec(&Envelope::new(greedy, Duration::from_secs(1), None)).unwrap();
        let e = decode_envelope(&greedy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad request: asks for 1000000000 addresses of one family, at most 256"
        );
        assert!(decode_envelope(b"not json").is_err());
        assert!(decode_envelope(b"\xff\xfe").is_err());
    }

    /// What the fuzz target `ipam_request` checks, over random lines and
    /// random edits of a real one: decoding never panics, and what decodes
    /// keeps the limits and re-encodes to the same request.
    fn decodes_within_limits(line: &[u8]) {
        let Ok(env) = decode_envelope(line) else {
            return;
        };
        assert!(line.len() <= MAX_REQUEST);
        if let Request::Assign {
            num_v4,
            num_v6,
            specific,
            ..
        } = &env.request
        {
            assert!(*num_v4 <= MAX_ADDRESSES && *num_v6 <= MAX_ADDRESSES);
            assert!(specific.as_ref().is_none_or(|s| s.len() <= MAX_ADDRESSES));
        }
        let again = serde_json::to_vec(&env).unwrap();
        if again.len() <= MAX_REQUEST {
            assert_eq!(decode_envelope(&again).unwrap(), env);
        }
    }

    const REAL: &str = r#"{"op":"assign","store":"local:/ds.db","handle":"k8s-pod-network.c1","node":"n1","attrs":{"pod":"p"},"specific":["10.0.0.1"],"num_v4":1,"num_v6":0,"v4_pools":["default-ipv4-ippool"],"v6_pools":[],"deadlineMs":1764750000000,"lockFile":"/var/run/calico/ipam.lock"}"#;

    proptest::proptest! {
        #[test]
        fn random_lines_decode_within_limits(line in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            decodes_within_limits(&line);
        }

        #[test]
        fn edited_requests_decode_within_limits(
            edits in proptest::collection::vec((0usize..300, proptest::num::u8::ANY), 1..6)
        ) {
            let mut line = REAL.as_bytes().to_vec();
            for (at, b) in edits {
                let at = at % line.len();
                line[at] = b;
            }
            decodes_within_limits(&line);
        }
    }

    #[test]
    fn the_real_request_decodes() {
        let env = decode_envelope(REAL.as_bytes()).unwrap();
        assert!(matches!(env.request, Request::Assign { num_v4: 1, .. }));
        decodes_within_limits(REAL.as_bytes());
    }
}
