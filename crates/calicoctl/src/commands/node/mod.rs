//! `calicoctl node ...`.

pub mod status;

use clap::Subcommand;

/// The node subcommands.
#[derive(Subcommand)]
pub enum NodeCmd {
    /// Whether calico-node runs on this host, and its BGP sessions.
    Status,
}

/// Runs one node subcommand.
pub fn run(c: NodeCmd) -> anyhow::Result<()> {
    match c {
        NodeCmd::Status => status::run(),
    }
}
