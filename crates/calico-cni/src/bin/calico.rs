//! The `calico` CNI plugin: thin wiring over [`calico_cni::plugin`].

fn main() -> std::process::ExitCode {
    calico_cni::main_with("calico", calico_cni::plugin::run)
}
