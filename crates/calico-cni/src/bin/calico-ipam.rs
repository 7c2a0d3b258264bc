//! The `calico-ipam` CNI plugin. Skeleton: the IPAM issue fills it in.

fn main() -> std::process::ExitCode {
    calico_cni::not_yet("calico-ipam")
}
