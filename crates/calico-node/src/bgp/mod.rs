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
//! - [`blocks`]: one IPAM block's share of the plan's inputs.
//!
//! [`run`] plans and configures the speaker whenever the engine
//! ([`crate::engine`]) sends changed inputs, and every 30 s.

pub mod blocks;
pub mod filter;
pub mod listener;
pub mod plan;
pub mod routes;
pub mod speaker;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use ipnet::IpNet;

use speaker::{Shared, Speaker};

/// The plan's inputs: the datastore's part as the engine holds it
/// ([`crate::engine::calc::BgpView`]: resources, and this node's share of
/// the blocks, kept per block) and this host's own (interface networks,
/// secrets, `CALICO_ROUTER_ID`, `CALICO_BGP_MAX_PREFIXES`).
pub fn inputs(me: &str, view: crate::engine::calc::BgpView) -> plan::Inputs {
    let mut inputs = plan::inputs(me, view.resources, view.my_blocks);
    inputs.borrowed = view.borrowed;
    inputs.workloads = view.workloads;
    inputs.interfaces = interface_networks();
    inputs.max_prefixes = std::env::var("CALICO_BGP_MAX_PREFIXES").ok();
    let dir = std::env::var("CALICO_BGP_SECRETS_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| plan::DEFAULT_SECRETS_DIR.into());
    inputs.secrets = plan::read_secrets(std::path::Path::new(&dir));
    inputs.router_id = std::env::var("CALICO_ROUTER_ID").ok();
    inputs
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

/// How often the plan is made again without a datastore change (the
/// interfaces' networks and the secrets files are this host's own).
const REPLAN: Duration = Duration::from_secs(30);

/// Runs the speaker for node `me` until the process ends, planning from
/// the views the engine sends (the latest of those waiting).
pub fn run(views: Receiver<crate::engine::calc::BgpView>, me: String, shared: Arc<Shared>) {
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
    let mut view = match views.recv() {
        Ok(v) => v,
        Err(_) => return,
    };
    loop {
        // Only the newest of the views waiting matters.
        while let Ok(v) = views.try_recv() {
            view = v;
        }
        match plan::plan(&inputs(&me, view.clone())) {
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
        match views.recv_timeout(REPLAN) {
            Ok(v) => view = v,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
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
