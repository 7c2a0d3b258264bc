//! What one IPAM block means to this node's BGP speaker: the block itself
//! when it is affine here, the addresses this node borrowed from it when it
//! is another node's, and this node's workload addresses in it (what
//! another node borrowed from our block is not ours). Pure, per block, so
//! a block's change costs that block.

use ipnet::IpNet;

/// One block's share of [`super::plan::Inputs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockShare {
    /// The block, when it is affine to this node.
    pub mine: Option<IpNet>,
    /// Addresses this node took from another node's block (/32, /128).
    pub borrowed: Vec<IpNet>,
    /// This node's workload (and tunnel) addresses in its own block.
    pub workloads: Vec<IpNet>,
}

impl BlockShare {
    /// Whether the block means nothing to this node.
    pub fn is_empty(&self) -> bool {
        self.mine.is_none() && self.borrowed.is_empty() && self.workloads.is_empty()
    }
}

/// The share of block `b` for node `me`.
pub fn share(b: &calico_ipam::Block, me: &str) -> BlockShare {
    let mut out = BlockShare::default();
    let node_of = |slot: Option<usize>| {
        slot.and_then(|i| b.attributes.get(i))
            .map(|attr| attr.secondary.get(calico_ipam::block::ATTR_NODE))
    };
    if b.affine_node() == Some(me) {
        out.mine = b.cidr.parse::<IpNet>().ok();
        for (o, a) in b.allocations.iter().enumerate() {
            // Allocations without attributes are not counted as ours.
            let Some(node) = node_of(*a) else { continue };
            if (node.is_none() || node.map(String::as_str) == Some(me))
                && let Some(ip) = b.ip_of(o)
            {
                out.workloads.push(IpNet::from(ip));
            }
        }
        return out;
    }
    for (o, a) in b.allocations.iter().enumerate() {
        if node_of(*a).flatten().map(String::as_str) == Some(me)
            && let Some(ip) = b.ip_of(o)
        {
            out.borrowed.push(IpNet::from(ip));
        }
    }
    out
}
