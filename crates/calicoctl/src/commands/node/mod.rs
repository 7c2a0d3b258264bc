//! `calicoctl node ...`.

pub mod checksystem;
pub mod diags;
pub mod status;

use std::path::PathBuf;

use clap::Subcommand;

/// The node subcommands.
#[derive(Subcommand)]
pub enum NodeCmd {
    /// Whether calico-node runs on this host, and its BGP sessions.
    Status,
    /// Whether this kernel has the features calico-node needs.
    Checksystem(checksystem::ChecksystemArgs),
    /// Collect this node's diagnostics into one tar.gz archive.
    Diags(diags::DiagsArgs),
}

/// Runs one node subcommand.
pub fn run(config: Option<&PathBuf>, c: NodeCmd) -> anyhow::Result<()> {
    match c {
        NodeCmd::Status => status::run(),
        NodeCmd::Checksystem(a) => checksystem::run(a),
        NodeCmd::Diags(a) => diags::run(config, a),
    }
}
