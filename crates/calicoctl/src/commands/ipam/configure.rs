//! `calicoctl ipam configure --strictaffinity=true|false --max-blocks-per-host=N`.

use anyhow::bail;
use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError};
use clap::Args;

/// Arguments of ipam configure.
#[derive(Args)]
pub struct ConfigureArgs {
    /// Never borrow addresses from other nodes' blocks.
    #[arg(long = "strictaffinity")]
    strict_affinity: Option<bool>,
    /// Most blocks one node may claim (0 = no limit).
    #[arg(long)]
    max_blocks_per_host: Option<i32>,
}

/// Runs the command.
pub fn run(client: &Client, a: ConfigureArgs) -> anyhow::Result<()> {
    if a.strict_affinity.is_none() && a.max_blocks_per_host.is_none() {
        bail!("give --strictaffinity=true|false and/or --max-blocks-per-host=N");
    }
    if let Some(n) = a.max_blocks_per_host.filter(|n| *n < 0) {
        bail!("--max-blocks-per-host={n} is negative: use 0 for no limit");
    }
    let key = ResourceKey {
        kind: Kind::IPAMConfiguration,
        namespace: None,
        name: "default".into(),
    };
    let mut r = match client.get(&key) {
        Ok(r) => r,
        Err(ClientError::NotFound(_)) => Resource::empty(Kind::IPAMConfiguration, "default"),
        Err(e) => return Err(e.into()),
    };
    if let Resource::IPAMConfiguration(c) = &mut r {
        if let Some(s) = a.strict_affinity {
            c.spec.strict_affinity = s;
        }
        if let Some(n) = a.max_blocks_per_host {
            c.spec.max_blocks_per_host = Some(n);
        }
    }
    client.apply(r)?;
    println!("Successfully set the IPAM configuration");
    Ok(())
}
