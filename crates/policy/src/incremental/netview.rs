//! A counted collection of networks and its disjoint view: the networks no
//! other network of the collection contains, which is what an nftables
//! interval set holds ([`crate::nft::disjoint_nets`]). Adding or removing
//! one network reports how the view changed, so a set is kept by element
//! deltas.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// Networks with how many contributors each has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetView {
    counts: BTreeMap<IpNet, u32>,
}

/// The widest prefix of `n`'s family, as an `IpNet` bound.
fn bound(addr: std::net::IpAddr, len: u8) -> IpNet {
    // Lengths come from the address's own family, so this cannot fail;
    // the fallback keeps the function total.
    IpNet::new(addr, len).unwrap_or_else(|_| IpNet::from(addr))
}

impl NetView {
    /// Whether a strictly wider network of the collection contains `n`.
    fn covered(&self, n: &IpNet) -> bool {
        (0..n.prefix_len()).any(|len| {
            let wider = bound(n.network(), len).trunc();
            self.counts.contains_key(&wider)
        })
    }

    /// The networks of the collection strictly inside `n`.
    fn inside<'a>(&'a self, n: &'a IpNet) -> impl Iterator<Item = IpNet> + 'a {
        let lo = bound(n.network(), 0);
        let hi = bound(n.broadcast(), n.max_prefix_len());
        self.counts
            .range(lo..=hi)
            .map(|(m, _)| *m)
            .filter(move |m| m != n && n.contains(m))
    }

    /// One more contributor of `n`; `changed(net, added)` hears each change
    /// of the view.
    pub fn add(&mut self, n: IpNet, changed: &mut impl FnMut(IpNet, bool)) {
        let n = n.trunc();
        let count = self.counts.entry(n).or_insert(0);
        *count += 1;
        if *count > 1 || self.covered(&n) {
            return;
        }
        // `n` is in the view now; what it contains and was there leaves.
        let inner: Vec<IpNet> = self.inside(&n).collect();
        for m in inner {
            if !self.covered_without(&m, &n) {
                changed(m, false);
            }
        }
        changed(n, true);
    }

    /// Whether a strictly wider network other than `except` contains `m`.
    fn covered_without(&self, m: &IpNet, except: &IpNet) -> bool {
        (0..m.prefix_len()).any(|len| {
            let wider = bound(m.network(), len).trunc();
            wider != *except && self.counts.contains_key(&wider)
        })
    }

    /// One contributor of `n` fewer (nothing when it had none).
    pub fn remove(&mut self, n: IpNet, changed: &mut impl FnMut(IpNet, bool)) {
        let n = n.trunc();
        let Some(count) = self.counts.get_mut(&n) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        self.counts.remove(&n);
        if self.covered(&n) {
            return;
        }
        changed(n, false);
        // What `n` hid and nothing else hides comes back.
        let inner: Vec<IpNet> = self.inside(&n).collect();
        for m in inner {
            if !self.covered(&m) {
                changed(m, true);
            }
        }
    }

    /// The view: networks no other one contains, in order.
    pub fn view(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.counts.keys().filter(|n| !self.covered(n)).copied()
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::disjoint_nets;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (
                0u8..4,
                0u8..4,
                prop::sample::select(vec![8u8, 16, 24, 30, 32])
            )
                .prop_map(|(a, b, len)| {
                    IpNet::new(std::net::Ipv4Addr::new(10, a, b, a ^ b).into(), len)
                        .map(|n| n.trunc())
                        .unwrap_or_else(|_| {
                            IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST))
                        })
                }),
            (0u16..3, prop::sample::select(vec![64u8, 120, 128])).prop_map(|(x, len)| {
                IpNet::new(
                    std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, x).into(),
                    len,
                )
                .map(|n| n.trunc())
                .unwrap_or_else(|_| {
                    IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
                })
            }),
        ]
    }

    proptest! {
        /// After any adds and removes, the view and the replayed changes
        /// both equal `disjoint_nets` of what is counted.
        #[test]
        fn the_view_is_disjoint_nets_and_the_changes_replay_to_it(
            ops in prop::collection::vec((any::<bool>(), net()), 0..80)
        ) {
            let mut v = NetView::default();
            let mut bag: Vec<IpNet> = Vec::new();
            let mut replay: BTreeSet<IpNet> = BTreeSet::new();
            for (add, n) in ops {
                let mut apply = |m: IpNet, added: bool| {
                    if added {
                        assert!(replay.insert(m), "added twice: {m}");
                    } else {
                        assert!(replay.remove(&m), "removed but absent: {m}");
                    }
                };
                if add {
                    v.add(n, &mut apply);
                    bag.push(n);
                } else if let Some(i) = bag.iter().position(|m| *m == n) {
                    v.remove(n, &mut apply);
                    bag.remove(i);
                }
                let want: BTreeSet<IpNet> = disjoint_nets(bag.iter().copied()).into_iter().collect();
                let view: BTreeSet<IpNet> = v.view().collect();
                prop_assert_eq!(&view, &want);
                prop_assert_eq!(&replay, &want);
            }
        }
    }
}
