//! `calicoctl ipam`: show, check, release and configure IP address management.

mod check;
mod configure;
mod release;
mod show;

use std::path::PathBuf;

use clap::Subcommand;

/// The ipam subcommands.
#[derive(Subcommand)]
pub enum IpamCmd {
    /// Show pool usage, one address, blocks, borrowed addresses or the configuration.
    Show(show::ShowArgs),
    /// Look for leaked addresses, dangling handles and orphaned blocks.
    Check(check::CheckArgs),
    /// Release addresses, by address or from a check report.
    Release(release::ReleaseArgs),
    /// Change the IPAM configuration.
    Configure(configure::ConfigureArgs),
}

/// Runs an ipam subcommand.
pub fn run(config: Option<&PathBuf>, cmd: IpamCmd) -> anyhow::Result<()> {
    let client = crate::connect(config)?;
    let ipam = calico_ipam::Ipam::new(client.store().clone());
    match cmd {
        IpamCmd::Show(a) => show::run(&client, &ipam, a),
        IpamCmd::Check(a) => check::run(&client, &ipam, a),
        IpamCmd::Release(a) => release::run(&ipam, a),
        IpamCmd::Configure(a) => configure::run(&client, a),
    }
}

/// `n (p%)` as Calico prints usage.
pub fn with_percent(n: u128, total: u128) -> String {
    let pct = n.saturating_mul(100).checked_div(total).unwrap_or(0);
    format!("{n} ({pct}%)")
}
