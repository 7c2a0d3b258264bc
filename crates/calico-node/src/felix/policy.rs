//! Network policy on this node: the policy resources (Calico's and the
//! stored Kubernetes NetworkPolicies) read from the datastore ([`read`]), compiled by [`calico_policy`] into the nftables
//! table `inet calico-policy`, applied by `nft -f` ([`Enforcer`]).
//!
//! The first pass (and every resync, and the pass after a failure) loads the
//! whole table in one transaction; the passes in between apply only the
//! difference the compiler computed (set elements, map entries, refilled
//! chains), also one transaction each.

use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError};
use calico_policy::{Engine, PolicyInput};

use super::settings::Effective;

/// The kinds policy is computed from besides the workload endpoints,
/// which the caller has read already (for routes too).
const KINDS: [Kind; 7] = [
    Kind::Tier,
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::Profile,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
    Kind::HostEndpoint,
];

/// Reads everything enforcement on node `me` is computed from; `hosts` are
/// the cluster's node addresses (overlay packets between them pass host
/// endpoints). The second value names resources that could not be decoded
/// (left out).
pub fn read(
    client: &Client,
    me: &str,
    felix: &Effective,
    workload_endpoints: Vec<Resource>,
    hosts: Vec<std::net::IpAddr>,
) -> Result<(PolicyInput, Vec<String>), ClientError> {
    let mut input = PolicyInput::default();
    let mut skipped = Vec::new();
    let mut resources = workload_endpoints;
    for kind in KINDS {
        let (items, bad, _) = client.list_lenient(kind, None)?;
        skipped.extend(bad);
        resources.extend(items);
    }
    for r in resources {
        if let Some(iface) = local_interface(&r, me) {
            input.local_interfaces.insert(iface);
        }
        input.add_resource(r);
    }
    let (k8s, _) = client.list_k8s_network_policies(None)?;
    input.kubernetes_network_policies = k8s;
    let (settings, problems) = felix.policy();
    input.settings = settings;
    skipped.extend(problems);
    input.settings.hosts = hosts;
    Ok((input, skipped))
}

/// The interface of an endpoint on node `me`.
fn local_interface(r: &Resource, me: &str) -> Option<String> {
    let (node, iface) = match r {
        Resource::WorkloadEndpoint(w) => (w.spec.node.as_str(), w.spec.interface_name.as_str()),
        Resource::HostEndpoint(h) => (h.spec.node.as_str(), h.spec.interface_name.as_str()),
        _ => return None,
    };
    (node == me && !iface.is_empty()).then(|| iface.to_string())
}

/// Keeps the kernel's policy table in line with the input.
#[derive(Default)]
pub struct Enforcer {
    engine: Engine,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Lines of nft script applied (0: nothing changed).
    pub lines: usize,
    /// Whether the whole table was loaded.
    pub full: bool,
    /// What could not be enforced.
    pub problems: Vec<String>,
}

impl Enforcer {
    pub fn new() -> Enforcer {
        Enforcer::default()
    }

    /// Brings the table to `input`; with `full`, reloads it whole.
    pub fn apply(&mut self, input: &PolicyInput, full: bool) -> Result<Applied, String> {
        if full {
            self.engine.forget();
        }
        let was_full = self.engine.current().is_none();
        let update = self.engine.update(input);
        let problems = update.problems.iter().map(ToString::to_string).collect();
        if update.script.trim().is_empty() {
            return Ok(Applied {
                problems,
                ..Applied::default()
            });
        }
        if let Err(e) = super::nat::nft_script(&update.script) {
            // The kernel may hold anything now: the next pass reloads it whole.
            self.engine.forget();
            return Err(format!("policy table: {e}"));
        }
        Ok(Applied {
            lines: update.script.lines().count(),
            full: was_full,
            problems,
        })
    }
}
