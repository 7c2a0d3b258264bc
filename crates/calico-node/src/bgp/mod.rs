//! calico-node's BGP speaker (`CALICO_NETWORKING_BACKEND=bird`): what
//! Calico does with BIRD and confd, in-process.
//!
//! - [`plan`]: datastore → peers and advertised prefixes (pure);
//! - [`speaker`]: the sessions (over `calico_bgp`'s pure state machine and
//!   codec) and the routes they learn;
//! - [`listener`]: the listening socket, the TCP MD5 keys it expects, and
//!   which accepted connections reach a session;
//! - [`filter`]: BGPFilter rules, and which learned routes may reach the
//!   kernel (none that takes over the node's own prefixes);
//! - [`routes`]: the best learned paths into the kernel.
//!
//! [`run`] is its reconcile loop: read, plan, configure the speaker, wait
//! for a datastore change (or 30 s), again.

pub mod filter;
pub mod listener;
pub mod plan;
pub mod routes;
pub mod speaker;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError, Revision};
use ipnet::IpNet;

use speaker::{Shared, Speaker};

/// Reads what the plan needs.
pub fn read(client: &Client, me: &str) -> Result<(plan::Inputs, Revision), ClientError> {
    let mut resources: Vec<Resource> = Vec::new();
    // The revision of the first list: watching from there, a change made
    // while the others are read is seen again rather than missed.
    let mut first = None;
    for kind in [
        Kind::Node,
        Kind::BGPConfiguration,
        Kind::BGPPeer,
        Kind::BGPFilter,
        Kind::IPPool,
    ] {
        let (items, _, rev) = client.list_lenient(kind, None)?;
        first.get_or_insert(rev);
        resources.extend(items);
    }
    let (kvs, last) = calico_ipam::list_blocks(client.store().as_ref())?;
    let host = format!("host:{me}");
    let (mut mine, mut borrowed, mut workloads) = (Vec::new(), Vec::new(), Vec::new());
    for b in kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice::<calico_ipam::Block>(&kv.value).ok())
    {
        if b.affinity.as_deref() == Some(host.as_str()) {
            mine.extend(b.cidr.parse::<IpNet>().ok());
            // This node's workloads (and tunnel addresses) in its blocks:
            // what another node borrowed from them is not ours.
            for (o, a) in b.allocations.iter().enumerate() {
                let Some(attr) = a.and_then(|i| b.attributes.get(i)) else {
                    continue;
                };
                let node = attr.secondary.get("node").map(String::as_str);
                if (node.is_none() || node == Some(me))
                    && let Some(ip) = b.ip_of(o)
                {
                    workloads.push(IpNet::from(ip));
                }
            }
            continue;
        }
        // Addresses this node took from another node's block: /32 routes.
        for (o, a) in b.allocations.iter().enumerate() {
            let node = a
                .and_then(|i| b.attributes.get(i))
                .and_then(|attr| attr.secondary.get("node"));
            if node.map(String::as_str) == Some(me)
                && let Some(ip) = b.ip_of(o)
            {
                borrowed.push(IpNet::from(ip));
            }
        }
    }
    let mut inputs = plan::inputs(me, resources, mine);
    inputs.borrowed = borrowed;
    inputs.workloads = workloads;
    inputs.interfaces = interface_networks();
    inputs.max_prefixes = std::env::var("CALICO_BGP_MAX_PREFIXES").ok();
    let dir = std::env::var("CALICO_BGP_SECRETS_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| plan::DEFAULT_SECRETS_DIR.into());
    inputs.secrets = plan::read_secrets(std::path::Path::new(&dir));
    inputs.router_id = std::env::var("CALICO_ROUTER_ID").ok();
    Ok((inputs, first.unwrap_or(last)))
}

/// The addresses on this node's interfaces with their prefix lengths, as
/// Calico's BIRD `direct` protocol sees them (`cali*` and `kube-ipvs*`
/// left out: workload ends, and every service address under kube-proxy's
/// IPVS mode). Nothing when netlink fails (the blocks, the node's own
/// address and the workloads are still protected).
fn interface_networks() -> Vec<IpNet> {
    let Ok(mut nl) = calico_dataplane::Netlink::open() else {
        return Vec::new();
    };
    let (Ok(links), Ok(addrs)) = (nl.links(), nl.all_addresses()) else {
        return Vec::new();
    };
    let skipped: Vec<u32> = links
        .iter()
        .filter(|l| l.name.starts_with("cali") || l.name.starts_with("kube-ipvs"))
        .map(|l| l.index)
        .collect();
    addrs
        .into_iter()
        .filter(|(i, _)| !skipped.contains(i))
        .map(|(_, a)| a)
        .collect()
}

/// Runs the speaker for node `me` until the process ends.
pub fn run(client: Client, me: String, shared: Arc<Shared>) {
    let restarted = routes::kernel_has_bgp_routes();
    if restarted {
        log::info!("BGP: routes of an earlier run found: restarting gracefully");
    }
    if let Ok(mut s) = shared.state.lock() {
        s.restarted = restarted;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (shared, stop) = (shared.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("bgp-routes".into())
            .spawn(move || routes::program_loop(shared, stop));
    }
    let mut speaker = Speaker::new(shared);
    let mut last_problems: Vec<String> = Vec::new();
    loop {
        let rev = match read(&client, &me) {
            Ok((inputs, rev)) => {
                match plan::plan(&inputs) {
                    Some(p) => {
                        if p.problems != last_problems {
                            for pr in &p.problems {
                                log::warn!("BGP: {pr}");
                            }
                            last_problems = p.problems.clone();
                        }
                        if let Err(e) = speaker.configure(&p) {
                            log::error!("{e}");
                        }
                    }
                    None => log::warn!("BGP: this node has no address yet"),
                }
                Some(rev)
            }
            Err(e) => {
                log::error!("BGP: datastore: {e}");
                None
            }
        };
        let Some(rev) = rev else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        crate::watch::wait_for_change(&client, rev, Duration::from_secs(30), &mut || {});
    }
}

/// The peers as `calicoctl node status` lists them, one per line:
/// address, type, state (`up`/`start`...), since, info — tab-separated.
pub fn status_lines(shared: &Shared) -> String {
    let mut out = String::new();
    for p in shared.status() {
        let since = p
            .since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let secs = since % 86400;
        let state = if p.state == calico_bgp::fsm::State::Established {
            "up"
        } else {
            "start"
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{:02}:{:02}:{:02}\t{}\n",
            p.address,
            p.kind.label(),
            state,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            p.info
        ));
    }
    out
}

/// Readiness as `-bird-ready` reports it: every configured peer
/// established (no peers: ready).
pub fn ready(shared: &Shared) -> Result<String, String> {
    let st = shared.status();
    let down: Vec<IpAddr> = st
        .iter()
        .filter(|p| p.state != calico_bgp::fsm::State::Established)
        .map(|p| p.address)
        .collect();
    if down.is_empty() {
        Ok(format!("BGP: {} peers established", st.len()))
    } else {
        Err(format!(
            "BGP not established with {}",
            down.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}
