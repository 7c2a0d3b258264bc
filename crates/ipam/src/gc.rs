//! CNI GC: release the addresses of this node's dead attachments of one
//! network.
//!
//! A handle `<network>.<containerID>` is released only when all of these
//! hold, so one node's runtime can never free another node's pods:
//! - the runtime sent its list of valid attachments (no list: nothing is
//!   released);
//! - the handle belongs to exactly this network: every allocation records
//!   its network ([`ATTR_NETWORK`], written at allocation time), or, for
//!   older allocations without it, the part after `<network>.` has no dot
//!   (so the split is unambiguous: `a.b.c` may be network `a.b`, and is
//!   kept by a GC of network `a`);
//! - its container ID is not in the list;
//! - every address of the handle is this node's: its [`ATTR_NODE`]
//!   attribute names this node, or, without that attribute, its block is
//!   affine to this node.

use std::collections::{BTreeMap, HashSet};

use crate::allocator::{Ipam, IpamError};
use crate::block::{ATTR_NETWORK, ATTR_NODE, Attribute, Block};

impl Ipam {
    /// CNI GC on `node` for `network`: releases each handle of this network
    /// and node whose container ID is not in `keep`; `keep = None` (the
    /// runtime sent no list) releases nothing. Returns the handles released.
    pub fn gc(
        &self,
        network: &str,
        node: &str,
        keep: Option<&HashSet<String>>,
    ) -> Result<Vec<String>, IpamError> {
        let Some(keep) = keep else {
            return Ok(Vec::new());
        };
        let blocks: BTreeMap<String, Block> = self
            .blocks()?
            .into_iter()
            .map(|b| (b.cidr.clone(), b))
            .collect();
        let mut out = Vec::new();
        for (id, handle) in self.handles()? {
            let allocations: Vec<(&Block, &Attribute)> = handle
                .block
                .keys()
                .filter_map(|cidr| blocks.get(cidr))
                .flat_map(|b| {
                    b.ips_of_handle(&id)
                        .into_iter()
                        .filter_map(move |ip| b.attribute_of(ip).map(|a| (b, a)))
                })
                .collect();
            if collectable(&id, network, node, &allocations, keep) {
                self.release_by_handle(&id)?;
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// Whether GC of `network` on `node` may release handle `id`, whose
/// allocations are `allocations` (block and attribute of each address).
fn collectable(
    id: &str,
    network: &str,
    node: &str,
    allocations: &[(&Block, &Attribute)],
    keep: &HashSet<String>,
) -> bool {
    let Some(container) = id
        .strip_prefix(network)
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|c| !c.is_empty())
    else {
        return false;
    };
    if keep.contains(container) || allocations.is_empty() {
        return false;
    }
    allocations.iter().all(|(block, attr)| {
        let same_network = match attr.secondary.get(ATTR_NETWORK) {
            Some(n) => n == network,
            None => !container.contains('.'),
        };
        let same_node = match attr.secondary.get(ATTR_NODE) {
            Some(n) => n == node,
            None => block.affine_node() == Some(node),
        };
        same_network && same_node
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(pairs: &[(&str, &str)]) -> Attribute {
        Attribute {
            handle_id: None,
            secondary: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn only_this_nodes_handles_of_exactly_this_network() {
        let net = "10.0.0.0/30".parse().unwrap_or_else(|e| panic!("{e}"));
        let mine = Block::new(net, Some("n1"));
        let theirs = Block::new(net, Some("n2"));
        let keep: HashSet<String> = ["live".to_string(), "d.live".to_string()].into();
        let recorded = attr(&[("node", "n1"), ("network", "a")]);
        let cases: &[(&str, &Block, Attribute, bool, &str)] = &[
            ("a.dead", &mine, recorded.clone(), true, "dead, ours"),
            ("a.live", &mine, recorded.clone(), false, "listed"),
            ("a.d.live", &mine, recorded.clone(), false, "listed, dotted"),
            (
                "a.d.dead",
                &mine,
                recorded.clone(),
                true,
                "dotted, recorded",
            ),
            ("ab.dead", &mine, recorded.clone(), false, "network ab"),
            ("a.", &mine, recorded.clone(), false, "no container"),
            (
                "a.b.dead",
                &mine,
                attr(&[("node", "n1"), ("network", "a.b")]),
                false,
                "network a.b",
            ),
            (
                "a.dead",
                &theirs,
                attr(&[("node", "n2"), ("network", "a")]),
                false,
                "n2's",
            ),
            (
                "a.dead",
                &mine,
                attr(&[("node", "n2"), ("network", "a")]),
                false,
                "n2 borrowed from n1",
            ),
            (
                "a.dead",
                &theirs,
                attr(&[("node", "n1"), ("network", "a")]),
                true,
                "n1 borrowed from n2",
            ),
            ("a.dead", &mine, attr(&[]), true, "old: n1's block"),
            ("a.dead", &theirs, attr(&[]), false, "old: n2's block"),
            (
                "a.b.dead",
                &mine,
                attr(&[("node", "n1")]),
                false,
                "old, ambiguous",
            ),
        ];
        for (id, block, a, want, why) in cases {
            let got = collectable(id, "a", "n1", &[(block, a)], &keep);
            assert_eq!(got, *want, "{why}: {id}");
        }
        assert!(
            !collectable("a.dead", "a", "n1", &[], &keep),
            "no addresses"
        );
    }
}
