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
//! These are the from-scratch computations and the kernel adapters; the
//! loop that drives them change by change is [`crate::engine`], whose
//! property test uses [`model::desired`] and [`policy::read`] as its oracle.

pub mod apply;
pub mod datastore_lock;
pub mod model;
pub mod nat;
pub mod policy;
pub mod settings;
pub mod sync;

/// Turns on IPv4 forwarding, and IPv6 forwarding unless `ipv6Support` is
/// off (as Felix); a kernel without IPv6 has nothing to turn on.
pub fn enable_forwarding(env: &std::collections::BTreeMap<String, serde_json::Value>) {
    if let Err(e) = apply::enable_forwarding() {
        log::warn!("cannot enable IPv4 forwarding: {e}");
    }
    if env.get("ipv6Support") != Some(&serde_json::Value::Bool(false))
        && std::path::Path::new("/proc/sys/net/ipv6").exists()
        && let Err(e) = apply::enable_ipv6_forwarding()
    {
        log::warn!("cannot enable IPv6 forwarding: {e}");
    }
}
