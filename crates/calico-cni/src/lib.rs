//! Shared code of the `calico` and `calico-ipam` CNI plugins.
//!
//! Skeleton for now: both binaries report a CNI error (code 100, written as
//! JSON on stdout as the CNI spec asks) saying they are not implemented.

use std::process::ExitCode;

/// Prints a CNI error result saying `plugin` is not implemented yet.
pub fn not_yet(plugin: &str) -> ExitCode {
    let msg = serde_json::json!({
        "cniVersion": "1.0.0",
        "code": 100,
        "msg": format!("{plugin} (calico-rs) is not implemented yet"),
        "details": "this build of calico-rs provides calicoctl and the datastore; the CNI plugins come with a later release",
    });
    println!("{msg}");
    ExitCode::FAILURE
}
