//! The `calico-ipam` CNI plugin: thin wiring over [`calico_cni::ipam`].

fn main() -> std::process::ExitCode {
    calico_cni::main_with("calico-ipam", calico_cni::ipam::run)
}
