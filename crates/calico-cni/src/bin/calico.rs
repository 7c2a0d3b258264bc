//! The `calico` CNI plugin. Skeleton: the CNI issue fills it in. Until then
//! it answers every command with a CNI error, so a runtime never mistakes it
//! for a working plugin.

fn main() -> std::process::ExitCode {
    calico_cni::not_yet("calico")
}
