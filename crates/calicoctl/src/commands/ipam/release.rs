//! `calicoctl ipam release --ip=ADDR` or `--from-report FILE`.

use std::net::IpAddr;

use anyhow::{Context, bail};
use calico_ipam::Ipam;
use clap::Args;

use super::check::Report;

/// Arguments of ipam release.
#[derive(Args)]
pub struct ReleaseArgs {
    /// The address to release.
    #[arg(long)]
    ip: Option<String>,
    /// Release what an `ipam check -o FILE` report found.
    #[arg(long)]
    from_report: Option<String>,
}

/// Runs the command.
pub fn run(ipam: &Ipam, a: ReleaseArgs) -> anyhow::Result<()> {
    match (&a.ip, &a.from_report) {
        (Some(ip), None) => {
            let addr: IpAddr = ip
                .parse()
                .with_context(|| format!("{ip:?} is not an IP address"))?;
            let released = ipam.release_ips(&[addr])?;
            if released.is_empty() {
                bail!("IP {addr} is not assigned");
            }
            println!("Successfully released IP address {addr}");
        }
        (None, Some(file)) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
            let report: Report = serde_json::from_str(&text)
                .with_context(|| format!("{file} is not an ipam check report"))?;
            let ips: Vec<IpAddr> = report.leaked.iter().map(|l| l.ip).collect();
            let released = ipam.release_ips(&ips)?;
            let mut handles = 0;
            for h in &report.empty_handles {
                ipam.release_by_handle(h)?;
                handles += 1;
            }
            let blocks = ipam.release_orphan_blocks()?;
            println!(
                "Released {} leaked IP addresses, {handles} empty handles and {} empty orphaned blocks",
                released.len(),
                blocks.len()
            );
        }
        _ => bail!("give either --ip=ADDR or --from-report=FILE"),
    }
    Ok(())
}
