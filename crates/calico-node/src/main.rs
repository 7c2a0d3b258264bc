//! `calico-node`, the per-host agent. Skeleton: the calico-node issue fills
//! it in (registration, routes, BGP). Until then it says so and exits 1.

fn main() -> std::process::ExitCode {
    eprintln!(
        "calico-node (calico-rs) is not implemented yet: this build provides calicoctl and the datastore"
    );
    std::process::ExitCode::FAILURE
}
