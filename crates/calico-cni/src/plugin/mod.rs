//! The `calico` CNI plugin: ADD, DEL, CHECK, GC, STATUS.
//!
//! ADD, in order (each step undoes the earlier ones when it fails):
//! 1. identity and annotations are parsed and checked (nothing made yet);
//!    with `kubernetes.kubeconfig`, the pod (annotations, labels, service
//!    account, named ports) and its namespace (pool annotations) are read
//!    from the Kubernetes API first;
//! 2. addresses: `ipAddrsNoIpam` as given, else IPAM — in-process for
//!    `calico-ipam` (with `ipAddrs`, pools and families from annotations),
//!    else the configured IPAM plugin is executed from `CNI_PATH`;
//! 3. the dataplane ([`netsetup`]);
//! 4. the WorkloadEndpoint ([`endpoint`]);
//! 5. the result, in the requested CNI version's format, with the host and
//!    container interfaces so `portmap` and `bandwidth` can be chained.
//!
//! DEL releases this container ID's handle, deletes the endpoint and the
//! veth if they are this container's (a late DEL of a sandbox the pod has
//! since replaced leaves the new sandbox's alone, as Calico; a host end it
//! cannot tell stays, but not its routes to the addresses just released);
//! whatever is already gone is fine. `CNI_NETNS` must be a network
//! namespace (checked without blocking); for DEL it may also be absent or
//! gone.

pub mod annotations;
pub mod delegate;
pub mod endpoint;
pub mod identity;
pub mod netsetup;

use std::net::IpAddr;

use calico_dataplane::NetNs;
use calico_dataplane::netns::NotNetNs;
use calico_datastore::Client;
use calico_ipam::Ipam;
use cni_spec::env::Command;
use cni_spec::error::CniError;
use cni_spec::result::{CniResult, Interface};
use serde_json::Value;

use std::collections::BTreeMap;

use crate::Invocation;
use crate::ipam::{self as cipam, Overrides};
use crate::k8s::{self, K8sError, PodInfo};
use annotations::PodRequest;
use identity::Workload;

/// Where calico-node writes the MTU for the plugins.
pub const MTU_FILE: &str = "/var/lib/calico/mtu";

/// The MTU: the config's unless 0 or absent, else calico-node's file, else 1500.
pub fn mtu(conf_mtu: Option<u32>) -> u32 {
    if let Some(m) = conf_mtu.filter(|m| *m > 0) {
        return m;
    }
    std::fs::read_to_string(MTU_FILE)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|m: &u32| *m >= 68)
        .unwrap_or(1500)
}

fn uses_calico_ipam(inv: &Invocation) -> bool {
    let t = inv.conf.ipam_or_default().ipam_type;
    t.is_empty() || t == "calico-ipam"
}

/// Runs one `calico` command.
pub fn run(inv: &Invocation) -> Result<Option<Value>, CniError> {
    match inv.env.command {
        Command::Add => add(inv),
        Command::Del => del(inv),
        Command::Check => check(inv),
        Command::Gc => {
            if uses_calico_ipam(inv) {
                cipam::gc(inv, &Ipam::new(crate::datastore(&inv.conf)?))
            } else {
                delegate::exec(inv, Command::Gc).map(|_| None)
            }
        }
        Command::Status => {
            let ipam = Ipam::new(crate::datastore(&inv.conf)?);
            cipam::status(&ipam)
        }
        Command::Version => Ok(Some(cni_spec::version::version_result(
            inv.conf.cni_version.as_deref().unwrap_or("1.1.0"),
        ))),
    }
}

/// The pod from the Kubernetes API, when `kubernetes.kubeconfig` is set
/// and the workload is a Kubernetes pod.
fn kube_pod(inv: &Invocation, w: &Workload) -> Result<Option<PodInfo>, CniError> {
    let Some(path) = inv
        .conf
        .kubernetes
        .as_ref()
        .and_then(|k| k.kubeconfig.as_deref())
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    if !w.is_k8s() {
        return Ok(None);
    }
    match k8s::read_pod(std::path::Path::new(path), &w.namespace, &w.pod) {
        Ok(p) => Ok(Some(p)),
        Err(e @ K8sError::Unreachable { .. }) => Err(CniError::try_again_later(e.to_string())),
        Err(e) => Err(CniError::new(100, e.to_string(), "")),
    }
}

/// The annotations that apply: the pod's from the API (if read), overlaid
/// with those the runtime passed; pools from the namespace's annotations
/// when the pod names none (as Calico).
fn pod_annotations(inv: &Invocation, api: Option<&PodInfo>) -> BTreeMap<String, String> {
    let runtime = inv.conf.runtime_config.clone().unwrap_or_default();
    let mut all = api.map(|p| p.annotations.clone()).unwrap_or_default();
    all.extend(runtime.pod_annotations);
    if let Some(p) = api {
        for key in [cipam::ANNOTATION_V4_POOLS, cipam::ANNOTATION_V6_POOLS] {
            if !all.contains_key(key)
                && let Some(v) = p.namespace_annotations.get(key)
            {
                all.insert(key.to_string(), v.clone());
            }
        }
    }
    all
}

fn pod_request(inv: &Invocation, api: Option<&PodInfo>) -> Result<PodRequest, CniError> {
    let runtime = inv.conf.runtime_config.clone().unwrap_or_default();
    let features = inv.conf.feature_control.clone().unwrap_or_default();
    let mut req = annotations::parse(&pod_annotations(inv, api), &features)?;
    if req.mac.is_none()
        && let Some(m) = runtime.mac.as_deref()
    {
        req.mac = Some(annotations::parse_mac(m).ok_or_else(|| {
            CniError::invalid_network_config(format!(
                "runtimeConfig.mac {m:?} is not a MAC address"
            ))
        })?);
    }
    Ok(req)
}

fn netns(inv: &Invocation) -> Result<NetNs, CniError> {
    let path = inv
        .env
        .netns
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CniError::invalid_env("CNI_NETNS is required"))?;
    NetNs::open(path).map_err(|e| netns_error(path, e))
}

/// A `CNI_NETNS` that is not a network namespace is a bad environment
/// (code 4); any other failure to open it is generic (100).
fn netns_error(path: &str, e: std::io::Error) -> CniError {
    match e.get_ref().and_then(|i| i.downcast_ref::<NotNetNs>()) {
        Some(n) => CniError::invalid_env(format!("CNI_NETNS {n}")),
        None => CniError::new(100, format!("open network namespace {path}: {e}"), ""),
    }
}

/// DEL's namespace: `None` when not given or gone (fine, as the spec
/// says), an error when the path is not a network namespace.
fn del_netns(inv: &Invocation) -> Result<Option<NetNs>, CniError> {
    let Some(path) = inv.env.netns.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    match NetNs::open(path) {
        Ok(ns) => Ok(Some(ns)),
        Err(e) if e.get_ref().is_some_and(|i| i.is::<NotNetNs>()) => Err(netns_error(path, e)),
        // Gone (or unreadable): nothing of the pod is left to see there.
        Err(_) => Ok(None),
    }
}

/// What ADD and CHECK start from.
struct Context {
    req: PodRequest,
    api: Option<PodInfo>,
    ns: NetNs,
    store: std::sync::Arc<dyn calico_datastore::Store>,
    client: Client,
    w: Workload,
    host_veth: String,
}

impl Context {
    fn new(inv: &Invocation) -> Result<Context, CniError> {
        let w = Workload::from_env(&inv.env, &crate::nodename(&inv.conf));
        let api = kube_pod(inv, &w)?;
        let req = pod_request(inv, api.as_ref())?;
        let ns = netns(inv)?;
        let store = crate::datastore(&inv.conf)?;
        let client = Client::new(store.clone());
        let host_veth = w.host_veth();
        Ok(Context {
            req,
            api,
            ns,
            store,
            client,
            w,
            host_veth,
        })
    }
}

/// How the addresses of an ADD were obtained, so a failure can undo it.
enum Source<'a> {
    None,
    CalicoIpam(cipam::LazyIpam<'a>),
    Delegated,
}

fn release(inv: &Invocation, source: &Source<'_>) {
    match source {
        Source::None => {}
        Source::CalicoIpam(ipam) => {
            let _ = cipam::release(inv, ipam);
        }
        Source::Delegated => {
            let _ = delegate::exec(inv, Command::Del);
        }
    }
}

fn add(inv: &Invocation) -> Result<Option<Value>, CniError> {
    let version = inv.conf.version()?;
    let Context {
        req,
        api,
        ns,
        store,
        client,
        w,
        host_veth,
    } = Context::new(inv)?;
    crate::datastore_lock::refuse_if_locked(&client)?;
    let network = inv.conf.network_name().to_string();

    // Addresses.
    let (ips, source) = if let Some(ips) = &req.ip_addrs_no_ipam {
        (ips.clone(), Source::None)
    } else if uses_calico_ipam(inv) {
        let ipam = cipam::LazyIpam::with(inv, Ipam::new(store.clone()));
        if req.ip_addrs.is_some() {
            // An address named by the pod replaces whatever the handle held.
            cipam::release(inv, &ipam)?;
        }
        // The pod's ipAddrs, else what the runtime asked for (`ips`, IP=).
        let specific = match &req.ip_addrs {
            Some(ips) => Some(ips.clone()),
            None => cipam::requested_ips(inv)?,
        };
        let ov = Overrides {
            specific,
            v4_pools: req.v4_pools.clone(),
            v6_pools: req.v6_pools.clone(),
            families: req.families,
        };
        (cipam::assign(inv, &ipam, &ov)?, Source::CalicoIpam(ipam))
    } else {
        if req.ip_addrs.is_some() {
            return Err(CniError::new(
                100,
                format!(
                    "annotation {} needs the calico-ipam IPAM plugin",
                    annotations::IP_ADDRS
                ),
                "",
            ));
        }
        let r = delegate::exec(inv, Command::Add)?
            .ok_or_else(|| CniError::new(100, "the IPAM plugin returned no result", ""))?;
        let ips: Vec<IpAddr> = r.ips.iter().map(|c| c.address).collect();
        (ips, Source::Delegated)
    };
    if ips.is_empty() {
        release(inv, &source);
        return Err(CniError::new(100, "IPAM returned no addresses", ""));
    }

    let undo_all = |e: CniError| -> CniError {
        let _ = netsetup::teardown(
            Some(&ns),
            &inv.env.ifname,
            &host_veth,
            netsetup::Deletion::Now,
        );
        release(inv, &source);
        e
    };

    let nats = annotations::ip_nats(&req.floating_ips, &ips).map_err(undo_all)?;
    if !w.is_k8s() {
        endpoint::ensure_network_profile(&client, &network).map_err(undo_all)?;
    }

    // Dataplane.
    let pod = netsetup::PodNet {
        host_veth: &host_veth,
        ifname: &inv.env.ifname,
        mtu: mtu(inv.conf.mtu),
        ips: &ips,
        container_mac: req.mac,
        allow_ip_forwarding: inv
            .conf
            .container_settings
            .as_ref()
            .is_some_and(|c| c.allow_ip_forwarding),
    };
    let made = netsetup::setup(&ns, &pod).map_err(undo_all)?;

    // Endpoint.
    let ep = endpoint::build(
        &w,
        &endpoint::EndpointData {
            host_veth: &host_veth,
            mac: made.container.mac,
            ips: &ips,
            nats: &nats,
            network: &network,
            pod: api.as_ref(),
        },
    )
    .map_err(undo_all)?;
    if let Err(e) = endpoint::write(&client, ep) {
        let _ = endpoint::delete(&client, &w);
        return Err(undo_all(e));
    }

    let mac = |m: Option<[u8; 6]>| m.map(endpoint::mac_string).unwrap_or_default();
    let result = CniResult {
        interfaces: vec![
            Interface {
                name: host_veth.clone(),
                mac: mac(made.host.mac),
                sandbox: None,
                mtu: None,
            },
            Interface {
                name: inv.env.ifname.clone(),
                mac: mac(made.container.mac),
                sandbox: inv.env.netns.clone(),
                mtu: None,
            },
        ],
        ips: cipam::host_addresses(&ips, Some(1)),
        ..CniResult::default()
    };
    Ok(Some(result.to_json(version)))
}

fn del(inv: &Invocation) -> Result<Option<Value>, CniError> {
    // Before anything: a path that is not a network namespace is an error.
    let ns = del_netns(inv)?;
    let store = crate::datastore(&inv.conf)?;
    let client = Client::new(store.clone());
    crate::datastore_lock::refuse_if_locked(&client)?;
    let node = crate::nodename(&inv.conf);
    let w = Workload::from_env(&inv.env, &node);

    // The host end as it is before anything is released (see
    // netsetup::Released).
    let host_index = netsetup::host_end_index(&w.host_veth());
    // Addresses first: a leaked address is worse than a leaked interface.
    // They are held by this container ID's handle, so a late DEL of an old
    // sandbox frees only the old sandbox's.
    let ips = if uses_calico_ipam(inv) {
        cipam::release(inv, &cipam::LazyIpam::with(inv, Ipam::new(store)))?
    } else {
        delegate::exec(inv, Command::Del)?;
        Vec::new()
    };
    // The endpoint and the host end are named after the pod, not the
    // container: only this container's go.
    let holder = endpoint::delete(&client, &w)?;
    netsetup::teardown_del(
        ns.as_ref(),
        &inv.env.ifname,
        &w.host_veth(),
        &holder,
        &netsetup::Released { host_index, ips },
    )?;
    Ok(None)
}

fn check(inv: &Invocation) -> Result<Option<Value>, CniError> {
    let version = inv.conf.version()?;
    if !version.supports_check() {
        return Err(CniError::incompatible_version(format!(
            "CHECK is not supported in CNI {}",
            version.as_str()
        )));
    }
    let prev = inv
        .conf
        .prev_result()?
        .ok_or_else(|| CniError::invalid_network_config("CHECK needs prevResult"))?;
    let ips: Vec<IpAddr> = prev.ips.iter().map(|c| c.address).collect();
    let Context {
        req,
        api: _,
        ns,
        store,
        client,
        w,
        host_veth,
    } = Context::new(inv)?;

    let mut problems = netsetup::check(
        &ns,
        &netsetup::PodNet {
            host_veth: &host_veth,
            ifname: &inv.env.ifname,
            mtu: 0,
            ips: &ips,
            container_mac: None,
            allow_ip_forwarding: false,
        },
    )?;
    match endpoint::get(&client, &w)? {
        None => problems.push(format!(
            "workload endpoint {} is missing",
            w.endpoint_name()
        )),
        Some(r) => problems.extend(endpoint::check(&r, &w, &host_veth, &ips)),
    }
    if req.ip_addrs_no_ipam.is_none() && uses_calico_ipam(inv) {
        let held = Ipam::new(store)
            .ips_by_handle(&cipam::handle(inv))
            .map_err(cipam::cni_error)?;
        for ip in &ips {
            if !held.contains(ip) {
                problems.push(format!(
                    "address {ip} is not allocated to handle {}",
                    cipam::handle(inv)
                ));
            }
        }
    } else if req.ip_addrs_no_ipam.is_none() {
        delegate::exec(inv, Command::Check)?;
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        Err(CniError::new(
            100,
            format!("check failed: {}", problems.join("; ")),
            "",
        ))
    }
}
