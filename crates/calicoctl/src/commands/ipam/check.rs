//! `calicoctl ipam check [--show-problem-ips] [-o report.json]`: finds
//! allocated addresses no workload endpoint or node uses (leaks), handles
//! that hold no address, blocks affine to nodes that do not exist, and
//! allocations outside every pool. Exit 0 when clean, 1 with a report otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{Context, bail};
use calico_api::{Kind, Resource};
use calico_datastore::Client;
use calico_ipam::Ipam;
use clap::Args;
use serde::{Deserialize, Serialize};

/// Arguments of ipam check.
#[derive(Args)]
pub struct CheckArgs {
    /// Print every problem address.
    #[arg(long)]
    show_problem_ips: bool,
    /// Print every allocated address.
    #[arg(long)]
    show_all_ips: bool,
    /// Write the report as JSON to this file (for `ipam release --from-report`).
    #[arg(short = 'o', long)]
    output: Option<String>,
}

/// An allocation nothing uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// The address.
    pub ip: IpAddr,
    /// Its handle.
    pub handle: String,
    /// Its block.
    pub block: String,
}

/// A block affine to a node that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanBlock {
    /// The block.
    pub cidr: String,
    /// The missing node.
    pub node: String,
    /// Addresses still allocated in it.
    #[serde(rename = "inUse")]
    pub in_use: usize,
}

/// What `ipam check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Allocated but not used by any endpoint or node.
    #[serde(rename = "leakedIPs", default)]
    pub leaked: Vec<Leak>,
    /// Handles that hold no address.
    #[serde(rename = "handlesWithoutAllocations", default)]
    pub empty_handles: Vec<String>,
    /// Blocks affine to missing nodes.
    #[serde(rename = "orphanBlocks", default)]
    pub orphan_blocks: Vec<OrphanBlock>,
    /// Allocations in blocks outside every pool.
    #[serde(rename = "ipsOutsidePools", default)]
    pub outside_pools: Vec<IpAddr>,
}

impl Report {
    /// Number of problems.
    pub fn problems(&self) -> usize {
        self.leaked.len()
            + self.empty_handles.len()
            + self.orphan_blocks.len()
            + self.outside_pools.len()
    }
}

fn strip_prefix_len(s: &str) -> Option<IpAddr> {
    s.split('/').next().and_then(|a| a.parse().ok())
}

/// Builds the report.
pub fn build(client: &Client, ipam: &Ipam, verbose: bool) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut used: BTreeSet<IpAddr> = BTreeSet::new();
    let (weps, _) = client.list(Kind::WorkloadEndpoint, None)?;
    for w in &weps {
        if let Resource::WorkloadEndpoint(w) = w {
            used.extend(
                w.spec
                    .ip_networks
                    .iter()
                    .filter_map(|n| strip_prefix_len(n)),
            );
        }
    }
    let (nodes, _) = client.list(Kind::Node, None)?;
    let mut node_names = BTreeSet::new();
    for n in &nodes {
        let Resource::Node(n) = n else { continue };
        node_names.insert(n.metadata.name.clone());
        let s = &n.spec;
        let tunnel = [
            s.ipv4_vxlan_tunnel_addr.as_deref(),
            s.ipv6_vxlan_tunnel_addr.as_deref(),
            s.bgp
                .as_ref()
                .and_then(|b| b.ipv4_ipip_tunnel_addr.as_deref()),
            s.wireguard
                .as_ref()
                .and_then(|w| w.interface_ipv4_address.as_deref()),
            s.wireguard
                .as_ref()
                .and_then(|w| w.interface_ipv6_address.as_deref()),
        ];
        used.extend(tunnel.into_iter().flatten().filter_map(strip_prefix_len));
    }
    let (pools, _) = client.list(Kind::IPPool, None)?;
    let pool_nets: Vec<ipnet::IpNet> = pools
        .iter()
        .filter_map(|p| match p {
            Resource::IPPool(p) => p.spec.net(),
            _ => None,
        })
        .collect();
    println!("Checking IPAM for inconsistencies...");
    let blocks = ipam.blocks()?;
    println!("Found {} IPAM blocks.", blocks.len());
    let mut handles_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut allocated = 0;
    for b in &blocks {
        let in_pool = b
            .net()
            .is_some_and(|n| pool_nets.iter().any(|p| p.contains(&n.network())));
        for (ip, attr) in b.allocated() {
            allocated += 1;
            let handle = attr.handle_id.clone().unwrap_or_default();
            *handles_seen.entry(handle.clone()).or_insert(0) += 1;
            if verbose {
                println!("  {ip} allocated to handle {handle}");
            }
            if !in_pool {
                report.outside_pools.push(ip);
            }
            if !used.contains(&ip) {
                report.leaked.push(Leak {
                    ip,
                    handle,
                    block: b.cidr.clone(),
                });
            }
        }
    }
    println!("Found {allocated} IPs allocated in IPAM.");
    for (h, _) in ipam.handles()? {
        if !handles_seen.contains_key(&h) {
            report.empty_handles.push(h);
        }
    }
    for (node, net) in ipam.affinities()? {
        if !node_names.contains(&node) {
            let in_use = blocks
                .iter()
                .find(|b| b.net() == Some(net))
                .map_or(0, |b| b.in_use());
            report.orphan_blocks.push(OrphanBlock {
                cidr: net.to_string(),
                node,
                in_use,
            });
        }
    }
    println!(
        "Found {} IPs that are allocated in IPAM but not used by any workload endpoint or node.",
        report.leaked.len()
    );
    println!(
        "Found {} handles that hold no allocation.",
        report.empty_handles.len()
    );
    println!(
        "Found {} blocks affine to nodes that do not exist.",
        report.orphan_blocks.len()
    );
    println!(
        "Found {} allocated IPs that are not in any IP pool.",
        report.outside_pools.len()
    );
    Ok(report)
}

/// Runs the command.
pub fn run(client: &Client, ipam: &Ipam, a: CheckArgs) -> anyhow::Result<()> {
    let report = build(client, ipam, a.show_all_ips)?;
    if a.show_problem_ips {
        for l in &report.leaked {
            println!(
                "  leaked: {} (handle {}, block {})",
                l.ip, l.handle, l.block
            );
        }
        for h in &report.empty_handles {
            println!("  handle without allocations: {h}");
        }
        for o in &report.orphan_blocks {
            println!(
                "  block {} is affine to missing node {} ({} in use)",
                o.cidr, o.node, o.in_use
            );
        }
        for ip in &report.outside_pools {
            println!("  outside every pool: {ip}");
        }
    }
    if let Some(path) = &a.output {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the report to {path}"))?;
        println!("Report written to {path}");
    }
    let n = report.problems();
    println!("Check complete; found {n} problems.");
    if n > 0 {
        bail!("IPAM check found {n} problems");
    }
    Ok(())
}
