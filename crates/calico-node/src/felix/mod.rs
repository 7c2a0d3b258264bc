//! Felix's job inside calico-node: keep the kernel's routing in line with
//! the datastore.
//!
//! - [`model`]: datastore snapshot → desired dataplane (pure);
//! - [`sync`]: reading the snapshot;
//! - [`apply`]: making the kernel match, touching only what it owns;
//! - [`nat`]: the nftables table (NAT outgoing, floating IPs, anti-spoofing);
//! - [`policy`]: network policy, the nftables table `inet calico-policy`;
//! - [`settings`]: FelixConfiguration `default` < `node.<name>` < `FELIX_*`.
//!
//! [`run`] is the reconcile loop: compute, apply, then wait for a datastore
//! change (a watch on everything under `/calico/`) or the periodic resync,
//! and do it again. Errors are logged and retried; readiness says whether
//! the last pass succeeded.

pub mod apply;
pub mod datastore_lock;
pub mod model;
pub mod nat;
pub mod policy;
pub mod settings;
pub mod sync;

use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_dataplane::Netlink;
use calico_datastore::Client;

use crate::health::Health;

/// How often everything is recomputed and re-applied without a change.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Runs the reconcile loop forever.
pub fn run(
    client: Client,
    me: String,
    env: std::collections::BTreeMap<String, serde_json::Value>,
    health: Arc<Health>,
    metrics: Arc<crate::metrics::Metrics>,
    bgp: bool,
) {
    use crate::metrics::Metrics;
    if let Err(e) = apply::enable_forwarding() {
        log::warn!("cannot enable IPv4 forwarding: {e}");
    }
    // IPv6 too, unless `ipv6Support` is off (as Felix); a kernel without
    // IPv6 has nothing to turn on.
    if env.get("ipv6Support") != Some(&serde_json::Value::Bool(false))
        && std::path::Path::new("/proc/sys/net/ipv6").exists()
        && let Err(e) = apply::enable_ipv6_forwarding()
    {
        log::warn!("cannot enable IPv6 forwarding: {e}");
    }
    let mut backoff = Duration::from_millis(200);
    let mut last_nft: Option<String> = None;
    let mut enforcer = policy::Enforcer::new();
    let mut last_resync = Instant::now();
    let mut grace = apply::Grace::default();
    let mut was_locked = false;
    loop {
        // A locked datastore (a migration): change nothing and wait, as Felix.
        if let Ok(Some(rev)) = datastore_lock::locked_at(&client) {
            if !was_locked {
                log::warn!("{}", datastore_lock::WAITING);
            }
            was_locked = true;
            health.set_ready(
                true,
                format!("{} (seen revision {rev})", datastore_lock::WAITING),
            );
            crate::watch::wait_for_change(&client, rev, RESYNC, &mut || {
                Metrics::inc(&metrics.events)
            });
            continue;
        }
        was_locked = false;
        let started = Instant::now();
        Metrics::inc(&metrics.resyncs);
        let pass = (|| -> Result<(calico_datastore::Revision, Vec<String>), String> {
            let (eff, felix_problems) =
                settings::read(&client, &me, &env).map_err(|e| format!("datastore: {e}"))?;
            for p in &felix_problems {
                log::warn!("felix configuration: {p}");
            }
            if let Some(level) = eff
                .str("logSeverityScreen")
                .and_then(|l| calico_log::parse_level(l).ok())
            {
                calico_log::set_level(level);
            }
            // Read once: routes and policy both need the workload endpoints.
            // The watch starts after the first read: a change made while
            // the later lists are read is seen again rather than missed.
            let (weps, mut skipped, first_rev) = client
                .list_lenient(calico_api::Kind::WorkloadEndpoint, None)
                .map_err(|e| format!("datastore: {e}"))?;
            let all_weps = weps.len();
            let (weps, dropped) = sync::admit(weps, eff.source_spoofing_allowed());
            let mut dataplane = eff.dataplane();
            // With the BGP speaker, routes into IP-in-IP pools come from BGP
            // (as BIRD programs them in Calico).
            dataplane.ipip_routes = !bgp;
            let (snap, _, more) = sync::read(&client, &me, dataplane, &weps)
                .map_err(|e| format!("datastore: {e}"))?;
            let local = weps
                .iter()
                .filter(
                    |r| matches!(r, calico_api::Resource::WorkloadEndpoint(w) if w.spec.node == me),
                )
                .count();
            metrics.set_counts(snap.nodes.len(), all_weps, local);
            let rev = first_rev;
            skipped.extend(more);
            for s in skipped.iter().chain(&dropped) {
                log::warn!("skipped {s}");
            }
            let d = model::desired(&snap);
            // Routes, the table `inet calico` and policy are applied each on
            // its own: one that fails is reported (and the pass retried)
            // without keeping the others from the kernel.
            let mut failed = Vec::new();
            let c = Netlink::open()
                .map_err(|e| e.to_string())
                .and_then(|mut nl| apply::apply(&mut nl, &d, &mut grace).map_err(|e| e.to_string()))
                .unwrap_or_else(|e| {
                    failed.push(format!("dataplane: {e}"));
                    apply::Changes::default()
                });
            // The table is checked against the kernel when it changed and at
            // every resync; in between an unchanged document costs nothing.
            let verify = last_resync.elapsed() >= RESYNC;
            if verify || last_nft.as_deref() != nat::marker(&d.nft) {
                match nat::apply(&d.nft) {
                    Ok(applied) => {
                        if applied {
                            metrics.nft_call(false);
                            log::info!("nftables table inet calico updated");
                        }
                        last_nft = nat::marker(&d.nft).map(str::to_string);
                    }
                    Err(e) => {
                        metrics.nft_call(true);
                        failed.push(format!("table {}: {e}", nat::TABLE));
                        last_nft = None;
                    }
                }
            }
            let hosts = snap.nodes.iter().filter_map(|n| n.ipv4.map(|a| a.addr()));
            let applied = match policy::read(&client, &me, &eff, weps, hosts.collect()) {
                Err(e) => {
                    failed.push(format!("policy: datastore: {e}"));
                    policy::Applied::default()
                }
                Ok((input, policy_skipped)) => {
                    for s in &policy_skipped {
                        log::warn!("policy: skipped {s}");
                    }
                    metrics.set_policy_counts(
                        input.tiers.len(),
                        input.network_policies.len()
                            + input.global_network_policies.len()
                            + input.kubernetes_network_policies.len(),
                        input.profiles.len(),
                        input.host_endpoints.len(),
                    );
                    match enforcer.apply(&input, verify) {
                        Ok(a) => {
                            if a.lines > 0 {
                                metrics.nft_call(false);
                            }
                            a
                        }
                        Err(e) => {
                            metrics.nft_call(true);
                            failed.push(format!("policy: {e}"));
                            policy::Applied::default()
                        }
                    }
                }
            };
            if applied.lines > 0 {
                Metrics::inc(&metrics.policy_updates);
                log::info!(
                    "policy: {} ({} lines)",
                    if applied.full {
                        "table loaded"
                    } else {
                        "table updated"
                    },
                    applied.lines
                );
            }
            if !failed.is_empty() {
                return Err(failed.join("; "));
            }
            if verify {
                last_resync = Instant::now();
            }
            let owned = d.blackholes.len()
                + d.vxlan_routes.len()
                + d.direct_routes.len()
                + d.ipip_routes.len()
                + d.workload_routes.len();
            metrics.routes.set(i64::try_from(owned).unwrap_or(i64::MAX));
            metrics
                .neighbours
                .set(i64::try_from(d.neighbours.len()).unwrap_or(i64::MAX));
            if c.added + c.removed > 0 {
                log::info!("dataplane: {} added, {} removed", c.added, c.removed);
            }
            let mut problems = d.problems;
            problems.extend(felix_problems);
            problems.extend(settings::not_implemented(&eff));
            problems.extend(dropped);
            problems.extend(c.problems);
            problems.extend(applied.problems);
            Ok((rev, problems))
        })();
        metrics.observe_apply(started.elapsed());
        let rev = match pass {
            Ok((rev, problems)) => {
                backoff = Duration::from_millis(200);
                let detail = if problems.is_empty() {
                    "in sync".to_string()
                } else {
                    format!("in sync; {}", problems.join("; "))
                };
                health.set_ready(true, detail);
                rev
            }
            Err(e) => {
                Metrics::inc(&metrics.errors);
                log::error!("{e}");
                health.set_ready(false, e);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        // Wait for a change after what we read, or the resync.
        crate::watch::wait_for_change(&client, rev, RESYNC, &mut || Metrics::inc(&metrics.events));
    }
}
