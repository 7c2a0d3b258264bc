//! `calicoctl ipam show [--ip=ADDR] [--show-blocks] [--show-borrowed] [--show-configuration]`.

use std::net::IpAddr;

use anyhow::Context;
use calico_api::{Kind, Resource};
use calico_datastore::Client;
use calico_ipam::Ipam;
use calico_ipam::block::block_len;
use clap::Args;
use ipnet::IpNet;

use super::with_percent;
use crate::table::render_boxed;

/// Arguments of ipam show.
#[derive(Args)]
pub struct ShowArgs {
    /// Show who holds one address.
    #[arg(long)]
    ip: Option<String>,
    /// Also list every block.
    #[arg(long)]
    show_blocks: bool,
    /// List addresses borrowed from other nodes' blocks.
    #[arg(long)]
    show_borrowed: bool,
    /// Show the IPAM configuration.
    #[arg(long)]
    show_configuration: bool,
}

fn pool_size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// Runs the command.
pub fn run(client: &Client, ipam: &Ipam, a: ShowArgs) -> anyhow::Result<()> {
    if let Some(ip) = &a.ip {
        let addr: IpAddr = ip
            .parse()
            .with_context(|| format!("{ip:?} is not an IP address"))?;
        match ipam.assignment(addr)? {
            None => println!("IP {addr} is not assigned"),
            Some(attr) => {
                println!("IP {addr} is in use");
                println!("Handle: {}", attr.handle_id.clone().unwrap_or_default());
                if !attr.secondary.is_empty() {
                    println!("Attributes:");
                    for (k, v) in &attr.secondary {
                        println!("  {k}: {v}");
                    }
                }
            }
        }
        return Ok(());
    }
    if a.show_configuration {
        let cfg = ipam.config()?;
        let rows = vec![
            vec![
                "StrictAffinity".to_string(),
                cfg.strict_affinity.to_string(),
            ],
            vec![
                "AutoAllocateBlocks".to_string(),
                cfg.auto_allocate_blocks.to_string(),
            ],
            vec![
                "MaxBlocksPerHost".to_string(),
                cfg.max_blocks_per_host.to_string(),
            ],
        ];
        print!("{}", render_boxed(&["PROPERTY", "VALUE"], &rows));
        return Ok(());
    }
    let blocks = ipam.blocks()?;
    if a.show_borrowed {
        let mut rows = Vec::new();
        for b in &blocks {
            for (ip, attr) in b.allocated() {
                let node = attr.secondary.get("node").cloned().unwrap_or_default();
                let owner = b.affine_node().unwrap_or("");
                if !node.is_empty() && node != owner {
                    let kind = if attr.secondary.contains_key("pod") {
                        "pod"
                    } else {
                        "other"
                    };
                    let to = match (attr.secondary.get("namespace"), attr.secondary.get("pod")) {
                        (Some(ns), Some(p)) => format!("{ns}/{p}"),
                        _ => attr.handle_id.clone().unwrap_or_default(),
                    };
                    rows.push(vec![
                        ip.to_string(),
                        node,
                        b.cidr.clone(),
                        owner.to_string(),
                        kind.to_string(),
                        to,
                    ]);
                }
            }
        }
        print!(
            "{}",
            render_boxed(
                &[
                    "IP",
                    "BORROWING-NODE",
                    "BLOCK",
                    "BLOCK OWNER",
                    "TYPE",
                    "ALLOCATED-TO"
                ],
                &rows
            )
        );
        return Ok(());
    }
    let (pools, _) = client.list(Kind::IPPool, None)?;
    let mut rows = Vec::new();
    for p in &pools {
        let Resource::IPPool(p) = p else { continue };
        let Some(net) = p.spec.net() else { continue };
        let total = pool_size(&net);
        let in_pool: Vec<&calico_ipam::Block> = blocks
            .iter()
            .filter(|b| b.net().is_some_and(|bn| net.contains(&bn.network())))
            .collect();
        let used: u128 = in_pool.iter().map(|b| b.in_use() as u128).sum();
        rows.push(vec![
            "IP Pool".into(),
            net.to_string(),
            total.to_string(),
            with_percent(used, total),
            with_percent(total - used, total),
        ]);
        if a.show_blocks {
            for b in in_pool {
                let size = b.net().map_or(0, |n| block_len(&n) as u128);
                rows.push(vec![
                    "Block".into(),
                    b.cidr.clone(),
                    size.to_string(),
                    with_percent(b.in_use() as u128, size),
                    with_percent(b.free() as u128, size),
                ]);
            }
        }
    }
    print!(
        "{}",
        render_boxed(
            &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
            &rows
        )
    );
    Ok(())
}
