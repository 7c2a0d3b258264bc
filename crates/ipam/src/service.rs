//! One allocation request as the CNI plugins make it, and its answer, in a
//! form that crosses a process boundary: the plugins can run it themselves
//! or ask the node's long-lived calico-node to (a unix socket, one JSON line
//! each way), which saves every pod the cost of opening the store.
//!
//! [`serve`] is the request's meaning, shared by both paths: what the handle
//! already holds, else the specific addresses (all or none), else one per
//! wanted family from the pools.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::allocator::{AssignArgs, Ipam, IpamError, Use};

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
        IpamError::PoolNotFound(_) | IpamError::PoolDisabled(_) | IpamError::PoolFamily(..) => {
            FailureClass::Config
        }
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
                for ip in specific {
                    if let Err(e) = ipam.assign_ip(*ip, handle, attrs, node) {
                        let _ = ipam.release_by_handle(handle);
                        return Err(e);
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
}
