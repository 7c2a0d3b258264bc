//! Calico's IPAM key layout under `/calico/ipam/v2/`.
//!
//! ```text
//! /calico/ipam/v2/assignment/ipv4/block/10.244.0.0-26      a block (AllocationBlock JSON)
//! /calico/ipam/v2/host/<node>/ipv4/block/10.244.0.0-26     a node's affinity to it
//! /calico/ipam/v2/handle/<handle id>                       a handle: allocations per block
//! ```

use ipnet::IpNet;

/// `ipv4` or `ipv6`.
pub fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// `10.244.0.0-26`, Calico's block name in keys.
pub fn block_name(net: &IpNet) -> String {
    format!("{}-{}", net.network(), net.prefix_len())
}

/// Parses a block name back (`10.244.0.0-26`, `fd00::-122`).
pub fn parse_block_name(name: &str) -> Option<IpNet> {
    let (ip, len) = name.rsplit_once('-')?;
    format!("{ip}/{len}").parse().ok()
}

/// Key of a block.
pub fn block(net: &IpNet) -> String {
    format!(
        "/calico/ipam/v2/assignment/{}/block/{}",
        family(net),
        block_name(net)
    )
}

/// Prefix of every block of a family (`ipv4`/`ipv6`).
pub fn blocks_prefix(family: &str) -> String {
    format!("/calico/ipam/v2/assignment/{family}/block/")
}

/// Key of a node's affinity to a block.
pub fn affinity(node: &str, net: &IpNet) -> String {
    format!(
        "/calico/ipam/v2/host/{node}/{}/block/{}",
        family(net),
        block_name(net)
    )
}

/// Prefix of a node's affinities of one family.
pub fn affinities_prefix(node: &str, family: &str) -> String {
    format!("/calico/ipam/v2/host/{node}/{family}/block/")
}

/// Prefix of every affinity.
pub const AFFINITY_ROOT: &str = "/calico/ipam/v2/host/";

/// Key of a handle.
pub fn handle(id: &str) -> String {
    format!("{HANDLE_ROOT}{id}")
}

/// Prefix of every handle.
pub const HANDLE_ROOT: &str = "/calico/ipam/v2/handle/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_calico() {
        let n: IpNet = "10.244.1.64/26".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            block(&n),
            "/calico/ipam/v2/assignment/ipv4/block/10.244.1.64-26"
        );
        assert_eq!(
            affinity("node-1", &n),
            "/calico/ipam/v2/host/node-1/ipv4/block/10.244.1.64-26"
        );
        assert_eq!(parse_block_name("10.244.1.64-26"), Some(n));
        let v6: IpNet = "fd00::40/122".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            block(&v6),
            "/calico/ipam/v2/assignment/ipv6/block/fd00::40-122"
        );
        assert_eq!(parse_block_name("fd00::40-122"), Some(v6));
        assert_eq!(
            handle("k8s-pod-network.abc"),
            "/calico/ipam/v2/handle/k8s-pod-network.abc"
        );
    }
}
