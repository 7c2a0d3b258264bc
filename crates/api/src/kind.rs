//! The table of resource kinds: names, plurals, calicoctl aliases and scope.
//!
//! Invariant: every kind has exactly one row; `from_cli` accepts the kind's
//! name, plural, singular and Calico's short names, case-insensitively.

use std::fmt;

/// A `projectcalico.org/v3` resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An IP pool from which workload addresses are assigned.
    IPPool,
    /// CIDRs that IPAM must never hand out.
    IPReservation,
    /// Global IPAM settings (`default` only).
    IPAMConfiguration,
    /// BGP settings, global (`default`) or per node (`node.<name>`).
    BGPConfiguration,
    /// A BGP peering.
    BGPPeer,
    /// Felix settings, global (`default`) or per node (`node.<name>`).
    FelixConfiguration,
    /// A Calico node.
    Node,
    /// A workload (pod) interface.
    WorkloadEndpoint,
    /// A host interface.
    HostEndpoint,
    /// A namespaced policy.
    NetworkPolicy,
    /// A cluster-wide policy.
    GlobalNetworkPolicy,
    /// A profile (namespace and service-account defaults).
    Profile,
    /// A namespaced set of networks.
    NetworkSet,
    /// A cluster-wide set of networks.
    GlobalNetworkSet,
    /// Cluster-wide information (`default` only).
    ClusterInformation,
    /// An ordered group of policies.
    Tier,
    /// Import and export rules for the BGP peers that name it.
    BGPFilter,
    /// Settings of Calico's kube-controllers (`default`); stored, not acted on.
    KubeControllersConfiguration,
    /// A namespaced policy change, previewed, never enforced.
    StagedNetworkPolicy,
    /// A cluster-wide policy change, previewed, never enforced.
    StagedGlobalNetworkPolicy,
    /// A Kubernetes NetworkPolicy change, previewed, never enforced.
    StagedKubernetesNetworkPolicy,
}

struct Row {
    kind: Kind,
    name: &'static str,
    plural: &'static str,
    namespaced: bool,
    aliases: &'static [&'static str],
}

const TABLE: &[Row] = &[
    Row {
        kind: Kind::IPPool,
        name: "IPPool",
        plural: "ippools",
        namespaced: false,
        aliases: &["ipp", "ipps", "pool", "pools"],
    },
    Row {
        kind: Kind::IPReservation,
        name: "IPReservation",
        plural: "ipreservations",
        namespaced: false,
        aliases: &["ipr", "iprs"],
    },
    Row {
        kind: Kind::IPAMConfiguration,
        name: "IPAMConfiguration",
        plural: "ipamconfigurations",
        namespaced: false,
        aliases: &["ipamconfig", "ipamconfigs"],
    },
    Row {
        kind: Kind::BGPConfiguration,
        name: "BGPConfiguration",
        plural: "bgpconfigurations",
        namespaced: false,
        aliases: &["bgpconfig", "bgpconfigs"],
    },
    Row {
        kind: Kind::BGPPeer,
        name: "BGPPeer",
        plural: "bgppeers",
        namespaced: false,
        aliases: &["bgpp", "bgpps", "bp", "bps"],
    },
    Row {
        kind: Kind::FelixConfiguration,
        name: "FelixConfiguration",
        plural: "felixconfigurations",
        namespaced: false,
        aliases: &["felixconfig", "felixconfigs"],
    },
    Row {
        kind: Kind::Node,
        name: "Node",
        plural: "nodes",
        namespaced: false,
        aliases: &["no", "nos"],
    },
    Row {
        kind: Kind::WorkloadEndpoint,
        name: "WorkloadEndpoint",
        plural: "workloadendpoints",
        namespaced: true,
        aliases: &["wep", "weps"],
    },
    Row {
        kind: Kind::HostEndpoint,
        name: "HostEndpoint",
        plural: "hostendpoints",
        namespaced: false,
        aliases: &["hep", "heps"],
    },
    Row {
        kind: Kind::NetworkPolicy,
        name: "NetworkPolicy",
        plural: "networkpolicies",
        namespaced: true,
        aliases: &[
            "policy", "policies", "np", "nps", "pol", "pols", "netpol", "netpols", "cnp",
        ],
    },
    Row {
        kind: Kind::GlobalNetworkPolicy,
        name: "GlobalNetworkPolicy",
        plural: "globalnetworkpolicies",
        namespaced: false,
        aliases: &["gnp", "gnps", "cgnp"],
    },
    Row {
        kind: Kind::Profile,
        name: "Profile",
        plural: "profiles",
        namespaced: false,
        aliases: &["pro", "pros"],
    },
    Row {
        kind: Kind::NetworkSet,
        name: "NetworkSet",
        plural: "networksets",
        namespaced: true,
        aliases: &["netset", "netsets"],
    },
    Row {
        kind: Kind::GlobalNetworkSet,
        name: "GlobalNetworkSet",
        plural: "globalnetworksets",
        namespaced: false,
        aliases: &["gns", "gnss"],
    },
    Row {
        kind: Kind::ClusterInformation,
        name: "ClusterInformation",
        plural: "clusterinformations",
        namespaced: false,
        aliases: &["clusterinfo", "clusterinfos"],
    },
    Row {
        kind: Kind::Tier,
        name: "Tier",
        plural: "tiers",
        namespaced: false,
        // Calico's `tier` and `tiers` are the name and the plural.
        aliases: &[],
    },
    Row {
        kind: Kind::BGPFilter,
        name: "BGPFilter",
        plural: "bgpfilters",
        namespaced: false,
        aliases: &["bgpf", "bgpfs", "bf", "bfs"],
    },
    Row {
        kind: Kind::KubeControllersConfiguration,
        name: "KubeControllersConfiguration",
        plural: "kubecontrollersconfigurations",
        namespaced: false,
        aliases: &["kubecontrollersconfig", "kubecontrollersconfigs"],
    },
    Row {
        kind: Kind::StagedNetworkPolicy,
        name: "StagedNetworkPolicy",
        plural: "stagednetworkpolicies",
        namespaced: true,
        aliases: &["stagedpolicy", "stagedpolicies", "snp", "spol", "spols"],
    },
    Row {
        kind: Kind::StagedGlobalNetworkPolicy,
        name: "StagedGlobalNetworkPolicy",
        plural: "stagedglobalnetworkpolicies",
        namespaced: false,
        aliases: &["sgnp", "sgnps"],
    },
    Row {
        kind: Kind::StagedKubernetesNetworkPolicy,
        name: "StagedKubernetesNetworkPolicy",
        plural: "stagedkubernetesnetworkpolicies",
        namespaced: true,
        aliases: &[
            "stagedkubernetespolicy",
            "stagedkubernetespolicies",
            "sknp",
            "skpol",
            "skpols",
        ],
    },
];

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 21] = [
        Kind::IPPool,
        Kind::IPReservation,
        Kind::IPAMConfiguration,
        Kind::BGPConfiguration,
        Kind::BGPPeer,
        Kind::FelixConfiguration,
        Kind::Node,
        Kind::WorkloadEndpoint,
        Kind::HostEndpoint,
        Kind::NetworkPolicy,
        Kind::GlobalNetworkPolicy,
        Kind::Profile,
        Kind::NetworkSet,
        Kind::GlobalNetworkSet,
        Kind::ClusterInformation,
        Kind::Tier,
        Kind::BGPFilter,
        Kind::KubeControllersConfiguration,
        Kind::StagedNetworkPolicy,
        Kind::StagedGlobalNetworkPolicy,
        Kind::StagedKubernetesNetworkPolicy,
    ];

    fn row(self) -> &'static Row {
        // TABLE is indexed in the same order as the enum declaration.
        &TABLE[self as usize]
    }

    /// The kind's name as written in `kind:` (e.g. `IPPool`).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The lowercase plural used in datastore keys and by calicoctl (e.g. `ippools`).
    pub fn plural(self) -> &'static str {
        self.row().plural
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.row().namespaced
    }

    /// Looks a kind up by its `kind:` name (exact, as in YAML).
    pub fn from_name(name: &str) -> Option<Kind> {
        TABLE.iter().find(|r| r.name == name).map(|r| r.kind)
    }

    /// Looks a kind up as calicoctl does on its command line: the name, plural,
    /// singular or a short name, case-insensitively.
    pub fn from_cli(word: &str) -> Option<Kind> {
        let w = word.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|r| {
                r.name.to_ascii_lowercase() == w || r.plural == w || r.aliases.contains(&w.as_str())
            })
            .map(|r| r.kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_enum_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].kind, *k);
            assert_eq!(Kind::from_name(k.name()), Some(*k));
            assert_eq!(Kind::from_cli(k.plural()), Some(*k));
            assert_eq!(Kind::from_cli(&k.name().to_uppercase()), Some(*k));
        }
    }

    #[test]
    fn aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in TABLE {
            assert!(seen.insert(r.name.to_ascii_lowercase()));
            assert!(seen.insert(r.plural.to_string()) || r.plural == r.name.to_ascii_lowercase());
            for a in r.aliases {
                assert!(seen.insert(a.to_string()), "duplicate alias {a}");
            }
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(Kind::from_cli("ipp"), Some(Kind::IPPool));
        assert_eq!(Kind::from_cli("gnp"), Some(Kind::GlobalNetworkPolicy));
        assert_eq!(Kind::from_cli("hep"), Some(Kind::HostEndpoint));
        assert_eq!(Kind::from_cli("wep"), Some(Kind::WorkloadEndpoint));
        assert_eq!(Kind::from_cli("bgpconfig"), Some(Kind::BGPConfiguration));
        assert_eq!(Kind::from_cli("tier"), Some(Kind::Tier));
        assert_eq!(Kind::from_cli("Tiers"), Some(Kind::Tier));
        assert_eq!(Kind::from_cli("bgpfilter"), Some(Kind::BGPFilter));
        assert_eq!(Kind::from_cli("bf"), Some(Kind::BGPFilter));
        assert_eq!(Kind::from_cli("nosuch"), None);
    }
}
