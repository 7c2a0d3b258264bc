//! The `calico` CNI plugin: thin wiring over [`calico_cni::plugin`].

use std::process::ExitCode;

use calico_cni::plugin::netsetup::{REAP_LINK_ENV, reap};

fn main() -> ExitCode {
    // A detached child of DEL, deleting one veth (see `netsetup::Deletion`).
    if let Ok(spec) = std::env::var(REAP_LINK_ENV) {
        return match reap(&spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    calico_cni::main_with("calico", calico_cni::plugin::run)
}
