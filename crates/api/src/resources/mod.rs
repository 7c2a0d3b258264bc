//! Typed specs of every `projectcalico.org/v3` kind, with Calico's field
//! names, defaults and validation rules.
//!
//! Field names are Calico's (camelCase in YAML). Unknown fields are refused
//! at decode time. Defaults that Calico writes into stored objects (IPPool)
//! are filled by `set_defaults`; defaults Calico applies only when reading
//! (BGPConfiguration `asNumber`, `nodeToNodeMeshEnabled`) are accessor methods.

mod bgp;
mod bgpfilter;
mod common;
mod endpoint;
mod felix;
mod felix_check;
mod ippool;
mod node;
mod policy;
mod schema;
mod staged;
mod tier;

pub use bgp::*;
pub use bgpfilter::*;
pub use common::*;
pub use endpoint::*;
pub use felix::*;
pub use felix_check::*;
pub use ippool::*;
pub use node::*;
pub use policy::*;
pub use schema::*;
pub use staged::*;
pub use tier::*;

/// Checks that a config-style resource is named `default` or `node.<name>`.
pub(crate) fn config_name(name: &str) -> Result<(), String> {
    if name == "default" {
        return Ok(());
    }
    match name.strip_prefix("node.") {
        Some(node) if !node.is_empty() => Ok(()),
        _ => Err(format!(
            "name {name:?} must be \"default\" or \"node.<nodename>\""
        )),
    }
}
