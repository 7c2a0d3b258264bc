//! The `calico-ipam` plugin: ADD, DEL, CHECK, GC and STATUS over
//! [`calico_ipam::Ipam`], as Calico's calico-ipam behaves.
//!
//! - Handle: `<network name>.<container ID>`; attributes record node,
//!   network, namespace and pod (from `K8S_POD_NAMESPACE` / `K8S_POD_NAME`).
//! - GC releases only this node's addresses of exactly this network, and
//!   nothing when the runtime sends no `cni.dev/valid-attachments`.
//! - Allocation asks calico-node's IPAM service first (with a deadline),
//!   else runs here under the host-wide IPAM lock (bounded wait).
//! - ADD is idempotent: a handle that already holds addresses gets them back.
//!   Specific addresses come from `IP=a[,b]` in `CNI_ARGS` or
//!   `runtimeConfig.ips`; pools from the pod annotations
//!   `cni.projectcalico.org/ipv4pools` / `ipv6pools` (JSON lists), else the
//!   config's `ipv4_pools` / `ipv6_pools`.
//! - Results carry /32 and /128 addresses.
//! - Errors: 7 bad config, 11 datastore unreachable or too much contention,
//!   100 allocation failures (message names the pools tried).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use calico_ipam::block::{ATTR_NETWORK, ATTR_NODE};
use calico_ipam::service::{self, Envelope, FailureClass, Request, Response};
use calico_ipam::{Ipam, IpamError};
use cni_spec::env::Command;
use cni_spec::error::CniError;
use cni_spec::result::{CniResult, IpConfig};
use serde_json::Value;

use crate::Invocation;

/// Pod annotation naming IPv4 pools.
pub const ANNOTATION_V4_POOLS: &str = "cni.projectcalico.org/ipv4pools";
/// Pod annotation naming IPv6 pools.
pub const ANNOTATION_V6_POOLS: &str = "cni.projectcalico.org/ipv6pools";

/// Where the host-wide IPAM lock lives unless `ipam_lock_file` says otherwise.
pub const IPAM_LOCK_FILE: &str = "/var/run/calico/ipam.lock";

/// The host-wide IPAM lock (as Calico's plugins take it): while held, no
/// other plugin process on this host, nor calico-node's IPAM service,
/// allocates or releases. Without it, many pods starting at once on one
/// node all race for the same block and retry their compare-and-swap
/// writes; with it they take turns, which is faster. Released on drop (or
/// when the process dies). The file is private (`0600`, no symlinks): see
/// [`calico_ipam::hostlock`].
pub type IpamLock = calico_ipam::hostlock::HostLock;

/// The IPAM lock file named by the config (`ipam_lock_file`), else
/// [`IPAM_LOCK_FILE`].
pub fn lock_path(inv: &Invocation) -> std::path::PathBuf {
    std::path::PathBuf::from(
        inv.conf
            .ipam_lock_file
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(IPAM_LOCK_FILE),
    )
}

/// Takes the IPAM lock named by the config, waiting at most
/// [`calico_ipam::hostlock::DEFAULT_WAIT`].
pub fn lock(inv: &Invocation) -> Result<IpamLock, CniError> {
    lock_at(&lock_path(inv), calico_ipam::hostlock::DEFAULT_WAIT)
}

/// Takes the IPAM lock at `path`, waiting at most `wait`: still held then
/// is "try again later" (11), a file that cannot be used an I/O failure
/// (5); both name the file.
pub fn lock_at(path: &std::path::Path, wait: Duration) -> Result<IpamLock, CniError> {
    calico_ipam::hostlock::acquire(path, wait).map_err(|e| {
        if e.is_timeout() {
            CniError::try_again_later(e.to_string())
        } else {
            CniError::io_failure(e.to_string())
        }
    })
}

/// The allocator, opened (datastore and all) only when first needed: when
/// the node's IPAM service answers, a plugin process never opens the store.
pub struct LazyIpam<'a> {
    inv: &'a Invocation,
    cell: std::cell::OnceCell<Ipam>,
}

impl<'a> LazyIpam<'a> {
    pub fn new(inv: &'a Invocation) -> LazyIpam<'a> {
        LazyIpam {
            inv,
            cell: std::cell::OnceCell::new(),
        }
    }

    /// One over a store the caller has open already.
    pub fn with(inv: &'a Invocation, ipam: Ipam) -> LazyIpam<'a> {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(ipam);
        LazyIpam { inv, cell }
    }

    pub fn get(&self) -> Result<&Ipam, CniError> {
        if let Some(i) = self.cell.get() {
            return Ok(i);
        }
        let ipam = Ipam::new(crate::datastore(&self.inv.conf)?);
        Ok(self.cell.get_or_init(|| ipam))
    }
}

/// The node's IPAM service socket: `ipam_socket` in the config (calico-rs),
/// else `/var/run/calico/ipam.sock`; `none` turns it off.
fn socket_path(inv: &Invocation) -> Option<std::path::PathBuf> {
    let p = inv
        .conf
        .extra
        .get("ipam_socket")
        .and_then(Value::as_str)
        .unwrap_or("/var/run/calico/ipam.sock");
    (p != "none" && !p.is_empty()).then(|| std::path::PathBuf::from(p))
}

/// How long a plugin waits for calico-node's answer before doing the work
/// itself (the request carries this deadline, and the service drops it
/// once passed).
const SERVICE_BUDGET: Duration = Duration::from_secs(60);

/// Asks calico-node to carry out `req`; `None` when it cannot (no socket,
/// not listening, another store, deadline passed, a broken exchange): the
/// caller then does it itself under the IPAM lock. That is safe: the
/// service takes the same lock and never starts a request after its
/// deadline, and requests are idempotent per handle.
fn via_node(inv: &Invocation, req: &Request) -> Option<Result<Vec<IpAddr>, CniError>> {
    use std::io::{BufRead, BufReader, Write};
    let path = socket_path(inv)?;
    let mut conn = std::os::unix::net::UnixStream::connect(&path).ok()?;
    let env = Envelope::new(req.clone(), SERVICE_BUDGET, Some(lock_path(inv)));
    conn.set_read_timeout(Some(SERVICE_BUDGET)).ok()?;
    conn.set_write_timeout(Some(SERVICE_BUDGET)).ok()?;
    let mut line = serde_json::to_string(&env).ok()?;
    line.push('\n');
    conn.write_all(line.as_bytes()).ok()?;
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).ok()?;
    match serde_json::from_str::<Response>(&answer).ok()? {
        Response::Ok { ips } => Some(Ok(ips)),
        Response::Failed { class, message } => match class {
            FailureClass::WrongStore | FailureClass::Expired => None,
            FailureClass::Config => Some(Err(CniError::invalid_network_config(message))),
            FailureClass::Transient => Some(Err(CniError::try_again_later(message))),
            FailureClass::Other => Some(Err(CniError::new(100, message, ""))),
        },
    }
}

/// Runs `req` through the node's service, else here under the IPAM lock.
fn perform(inv: &Invocation, ipam: &LazyIpam<'_>, req: &Request) -> Result<Vec<IpAddr>, CniError> {
    if let Some(r) = via_node(inv, req) {
        return r;
    }
    let _lock = lock(inv)?;
    service::serve(ipam.get()?, req).map_err(cni_error)
}

fn store_identity(inv: &Invocation) -> Result<String, CniError> {
    Ok(crate::datastore_config(&inv.conf)?.identity())
}

/// Releases this invocation's handle; returns the addresses released.
pub fn release(inv: &Invocation, ipam: &LazyIpam<'_>) -> Result<Vec<IpAddr>, CniError> {
    let req = Request::Release {
        store: store_identity(inv)?,
        handle: handle(inv),
    };
    perform(inv, ipam, &req)
}

/// Maps an IPAM error to its CNI error.
pub fn cni_error(e: IpamError) -> CniError {
    if e.is_transient() {
        return CniError::try_again_later(e.to_string());
    }
    match e {
        IpamError::PoolNotFound(_)
        | IpamError::PoolDisabled(_)
        | IpamError::PoolFamily(..)
        | IpamError::PoolUse { .. } => CniError::invalid_network_config(e.to_string()),
        IpamError::Store(s) => crate::store_error(s),
        other => CniError::new(100, other.to_string(), ""),
    }
}

/// Pools named by an annotation (a JSON list of names or CIDRs).
pub fn pools_from_annotation(
    annotations: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<Vec<String>>, CniError> {
    annotation_list(annotations, key, CniError::invalid_network_config)
}

/// An annotation holding a JSON list of strings; `err` makes the error.
pub fn annotation_list(
    annotations: &BTreeMap<String, String>,
    key: &str,
    err: impl Fn(String) -> CniError,
) -> Result<Option<Vec<String>>, CniError> {
    match annotations.get(key) {
        None => Ok(None),
        Some(v) => serde_json::from_str::<Vec<String>>(v)
            .map(Some)
            .map_err(|e| {
                err(format!(
                    "annotation {key} must be a JSON list of strings: {e}"
                ))
            }),
    }
}

/// The handle of this invocation.
pub fn handle(inv: &Invocation) -> String {
    format!("{}.{}", inv.conf.network_name(), inv.env.container_id)
}

/// Result entries for pod addresses: /32 and /128, on `interface`.
pub fn host_addresses(ips: &[IpAddr], interface: Option<usize>) -> Vec<IpConfig> {
    ips.iter()
        .map(|ip| IpConfig {
            address: *ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
            gateway: None,
            interface,
        })
        .collect()
}

fn result(inv: &Invocation, ips: &[IpAddr]) -> Result<Option<Value>, CniError> {
    let r = CniResult {
        ips: host_addresses(ips, None),
        ..CniResult::default()
    };
    Ok(Some(r.to_json(inv.conf.version()?)))
}

/// Runs one calico-ipam command.
pub fn run(inv: &Invocation) -> Result<Option<Value>, CniError> {
    let ipam = LazyIpam::new(inv);
    match inv.env.command {
        Command::Add => add(inv, &ipam),
        Command::Del => {
            release(inv, &ipam)?;
            Ok(None)
        }
        Command::Check => check(inv, ipam.get()?),
        Command::Gc => gc(inv, ipam.get()?),
        Command::Status => status(ipam.get()?),
        Command::Version => Ok(Some(cni_spec::version::version_result(
            inv.conf.cni_version.as_deref().unwrap_or("1.1.0"),
        ))),
    }
}

/// GC: releases this node's addresses of this network whose container is
/// not in `cni.dev/valid-attachments`; without that list, nothing (see
/// [`calico_ipam::gc`]).
pub fn gc(inv: &Invocation, ipam: &Ipam) -> Result<Option<Value>, CniError> {
    let Some(attachments) = inv.conf.gc_attachments()? else {
        return Ok(None);
    };
    let keep: HashSet<String> = attachments.into_iter().map(|a| a.container_id).collect();
    let node = crate::nodename(&inv.conf);
    let _lock = lock(inv)?;
    ipam.gc(inv.conf.network_name(), &node, Some(&keep))
        .map_err(cni_error)?;
    Ok(None)
}

/// STATUS: ready when the datastore answers and holds a usable pool (an
/// enabled one), else code 50.
pub fn status(ipam: &Ipam) -> Result<Option<Value>, CniError> {
    let pools =
        calico_datastore::Client::new(ipam.store().clone()).list(calico_api::Kind::IPPool, None);
    match pools {
        Ok((p, _)) => {
            let usable = p.iter().any(|r| match r {
                calico_api::Resource::IPPool(pool) => !pool.spec.disabled,
                _ => false,
            });
            if usable {
                Ok(None)
            } else {
                Err(CniError::plugin_not_available(
                    "no usable IP pool: every pool is disabled or none is configured",
                ))
            }
        }
        Err(e) => Err(CniError::plugin_not_available(e.to_string())),
    }
}

fn add(inv: &Invocation, ipam: &LazyIpam<'_>) -> Result<Option<Value>, CniError> {
    let runtime = inv.conf.runtime_config.clone().unwrap_or_default();
    let specific = requested_ips(inv)?;
    let annotations = &runtime.pod_annotations;
    let ov = Overrides {
        specific,
        v4_pools: pools_from_annotation(annotations, ANNOTATION_V4_POOLS)?,
        v6_pools: pools_from_annotation(annotations, ANNOTATION_V6_POOLS)?,
        families: None,
    };
    let all = assign(inv, ipam, &ov)?;
    result(inv, &all)
}

/// Specific addresses the runtime asked for: `IP=a[,b]` in `CNI_ARGS`, or
/// `runtimeConfig.ips` (the CNI `ips` capability); `None` when neither.
pub fn requested_ips(inv: &Invocation) -> Result<Option<Vec<IpAddr>>, CniError> {
    let runtime = inv.conf.runtime_config.clone().unwrap_or_default();
    let mut specific: Vec<String> = inv
        .env
        .arg("IP")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    specific.extend(runtime.ips.iter().cloned());
    if specific.is_empty() {
        return Ok(None);
    }
    let mut ips = Vec::new();
    for s in specific {
        let addr = s.split('/').next().unwrap_or("").trim();
        ips.push(addr.parse().map_err(|_| {
            CniError::invalid_network_config(format!(
                "requested address {s:?} is not an IP address"
            ))
        })?);
    }
    Ok(Some(ips))
}

/// What the caller decided beyond the network config: specific addresses
/// (`ipAddrs`), pools from annotations, the families to assign.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Assign exactly these addresses.
    pub specific: Option<Vec<IpAddr>>,
    /// Pools to use instead of the config's `ipv4_pools`.
    pub v4_pools: Option<Vec<String>>,
    /// Pools to use instead of the config's `ipv6_pools`.
    pub v6_pools: Option<Vec<String>>,
    /// (IPv4, IPv6) instead of the config's `assign_ipv4` / `assign_ipv6`.
    pub families: Option<(bool, bool)>,
}

/// Assigns this invocation's addresses (idempotent per handle): what the
/// handle already holds, else the specific addresses, else one per family
/// from the pools. On failure nothing stays allocated to the handle.
pub fn assign(
    inv: &Invocation,
    ipam: &LazyIpam<'_>,
    ov: &Overrides,
) -> Result<Vec<IpAddr>, CniError> {
    let ipam_conf = inv.conf.ipam_or_default();
    let (want_v4, want_v6) = ov
        .families
        .unwrap_or((ipam_conf.assign_ipv4(), ipam_conf.assign_ipv6()));
    if !want_v4 && !want_v6 {
        return Err(CniError::invalid_network_config(
            "assign_ipv4 and assign_ipv6 are both false: nothing to assign",
        ));
    }
    let node = crate::nodename(&inv.conf);
    let k8s = inv.env.k8s_args();
    // The network too, so GC can tell `a.b` + `c` from `a` + `b.c`.
    let mut attrs = BTreeMap::from([
        (ATTR_NODE.to_string(), node.clone()),
        (
            ATTR_NETWORK.to_string(),
            inv.conf.network_name().to_string(),
        ),
    ]);
    if let Some(ns) = k8s.namespace.clone() {
        attrs.insert("namespace".into(), ns);
    }
    if let Some(pod) = k8s.pod_name.clone() {
        attrs.insert("pod".into(), pod);
    }
    attrs.insert("timestamp".into(), now());
    let req = Request::Assign {
        store: store_identity(inv)?,
        handle: handle(inv),
        node,
        attrs,
        specific: ov.specific.clone(),
        num_v4: usize::from(want_v4),
        num_v6: usize::from(want_v6),
        v4_pools: ov.v4_pools.clone().unwrap_or(ipam_conf.ipv4_pools.clone()),
        v6_pools: ov.v6_pools.clone().unwrap_or(ipam_conf.ipv6_pools.clone()),
    };
    perform(inv, ipam, &req)
}

fn check(inv: &Invocation, ipam: &Ipam) -> Result<Option<Value>, CniError> {
    let version = inv.conf.version()?;
    if !version.supports_check() {
        return Err(CniError::incompatible_version(format!(
            "CHECK is not supported in CNI {}",
            version.as_str()
        )));
    }
    let handle = handle(inv);
    let held = ipam.ips_by_handle(&handle).map_err(cni_error)?;
    if held.is_empty() {
        return Err(CniError::new(
            100,
            format!("no addresses are allocated for handle {handle}"),
            "",
        ));
    }
    if let Some(prev) = inv.conf.prev_result()? {
        for ip in prev.ips {
            if !held.contains(&ip.address) {
                return Err(CniError::new(
                    100,
                    format!(
                        "address {} from the previous result is not allocated to handle {handle}",
                        ip.address
                    ),
                    "",
                ));
            }
        }
    }
    Ok(None)
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_try_again_later_naming_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("ipam.lock");
        let _held = lock_at(&path, Duration::ZERO).unwrap_or_else(|e| panic!("{e:?}"));
        let e = lock_at(&path, Duration::from_millis(20)).err();
        let e = e.unwrap_or_else(|| panic!("took a held lock"));
        assert_eq!(e.code, cni_spec::error::TRY_AGAIN_LATER);
        assert!(e.msg.contains(&path.display().to_string()), "{}", e.msg);
    }
}
