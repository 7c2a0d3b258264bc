//! Tables as Calico's calicoctl prints them (Go tabwriter: minimum cell
//! width 5, padding 3, left-aligned), with Calico's columns per kind.

use calico_api::{Kind, Resource};

/// Renders rows under headings: each column is as wide as its widest cell plus 3 spaces.
pub fn render(headings: &[&str], rows: &[Vec<String>]) -> String {
    let n = headings.len();
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let all = std::iter::once(headings.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for row in all {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(n) {
            line.push_str(cell);
            if i + 1 < n {
                let w = (widths[i] + 3).max(5);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders a bordered table as Calico's `calicoctl ipam` commands print them.
pub fn render_boxed(headings: &[&str], rows: &[Vec<String>]) -> String {
    let n = headings.len();
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &[String], center: bool| -> String {
        let mut s = String::new();
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = w - c.chars().count();
            // Like Go's tablewriter: headings centred, numbers right-aligned.
            let numeric = !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit());
            let (l, r) = if center {
                (pad / 2, pad - pad / 2)
            } else if numeric {
                (pad, 0)
            } else {
                (0, pad)
            };
            s.push_str(&format!("| {}{c}{} ", " ".repeat(l), " ".repeat(r)));
        }
        s + "|\n"
    };
    let head: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
    let mut out = rule.clone() + &line(&head, true) + &rule;
    for r in rows {
        out.push_str(&line(r, false));
    }
    out + &rule
}

fn bool_s(b: bool) -> String {
    b.to_string()
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A float as Go's `%v` prints it (Calico's tables are Go templates): the
/// shortest digits, in exponent form from 1e+06 on or below 1e-04.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return f.to_string();
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        f.to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn order(o: Option<f64>) -> String {
    o.map(go_float).unwrap_or_default()
}

/// A policy's tier as Calico shows it: `default` when none is named.
fn tier(t: &Option<String>) -> String {
    t.clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| calico_api::resources::DEFAULT_TIER.into())
}

/// `items` joined by `,`, cut to 80 characters ending in `...`, as
/// Calico's `joinAndTruncate` (used for NETS and CIDRS).
fn join_truncated(items: &[String]) -> String {
    let s = items.join(",");
    if s.chars().count() > 80 {
        s.chars().take(77).collect::<String>() + "..."
    } else {
        s
    }
}

/// `-` when unset, as Calico's BGPConfiguration columns.
fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

/// Cluster-wide values some cells show (Calico's template `config`
/// function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// The AS number of the BGPConfiguration `default` (64512 without one),
    /// shown in brackets for nodes that set none.
    pub default_as: String,
}

impl Default for Globals {
    fn default() -> Globals {
        Globals {
            default_as: calico_api::resources::DEFAULT_AS_NUMBER.to_string(),
        }
    }
}

/// Headings and one row per resource for `-o ps` (`wide = false`) or `-o
/// wide`. `with_namespace` (`-n NS` or `-A`, as Calico) puts NAMESPACE
/// first for namespaced kinds.
pub fn rows(
    resources: &[Resource],
    wide: bool,
    with_namespace: bool,
    g: &Globals,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let Some(first) = resources.first() else {
        return (vec!["NAME"], vec![]);
    };
    let mut headings: Vec<&'static str> = columns(first.kind(), wide);
    let mut rows: Vec<Vec<String>> = resources.iter().map(|r| cells(r, wide, g)).collect();
    if with_namespace && first.kind().namespaced() {
        headings.insert(0, "NAMESPACE");
        for (row, r) in rows.iter_mut().zip(resources) {
            row.insert(0, r.metadata().namespace.clone().unwrap_or_default());
        }
    }
    (headings, rows)
}

/// Calico's headings per kind (its calicoctl `resourcemgr` tables).
pub fn columns(kind: Kind, wide: bool) -> Vec<&'static str> {
    match (kind, wide) {
        (Kind::IPPool, false) => vec!["NAME", "CIDR", "SELECTOR"],
        (Kind::IPPool, true) => vec![
            "NAME",
            "CIDR",
            "NAT",
            "IPIPMODE",
            "VXLANMODE",
            "DISABLED",
            "DISABLEBGPEXPORT",
            "SELECTOR",
            "ASSIGNMENTMODE",
        ],
        (Kind::IPReservation, true) => vec!["NAME", "CIDRS"],
        (Kind::IPAMConfiguration, false) => vec!["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
        (Kind::IPAMConfiguration, true) => vec![
            "NAME",
            "STRICTAFFINITY",
            "AUTOALLOCATEBLOCKS",
            "MAXBLOCKSPERHOST",
        ],
        (Kind::BGPConfiguration, _) => vec!["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        (Kind::BGPPeer, _) => vec!["NAME", "PEERIP", "NODE", "ASN"],
        (Kind::Node, true) => vec!["NAME", "ASN", "IPV4", "IPV6"],
        (Kind::WorkloadEndpoint, false) => vec!["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
        (Kind::WorkloadEndpoint, true) => vec![
            "NAME",
            "WORKLOAD",
            "NODE",
            "NETWORKS",
            "INTERFACE",
            "PROFILES",
            "NATS",
        ],
        (Kind::HostEndpoint, false) => vec!["NAME", "NODE"],
        (Kind::HostEndpoint, true) => vec!["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
        (
            Kind::NetworkPolicy
            | Kind::GlobalNetworkPolicy
            | Kind::StagedNetworkPolicy
            | Kind::StagedGlobalNetworkPolicy,
            false,
        ) => vec!["NAME", "TIER"],
        (
            Kind::NetworkPolicy
            | Kind::GlobalNetworkPolicy
            | Kind::StagedNetworkPolicy
            | Kind::StagedGlobalNetworkPolicy,
            true,
        ) => vec!["NAME", "TIER", "ORDER", "SELECTOR"],
        (Kind::StagedKubernetesNetworkPolicy, true) => vec!["NAME", "PODSELECTOR"],
        (Kind::Tier, _) => vec!["NAME", "ORDER"],
        (Kind::BGPFilter, _) => vec![
            "NAME",
            "NUMEXPORTV4",
            "NUMIMPORTV4",
            "NUMEXPORTV6",
            "NUMIMPORTV6",
        ],
        (Kind::Profile, true) => vec!["NAME", "LABELS"],
        (Kind::NetworkSet | Kind::GlobalNetworkSet, true) => vec!["NAME", "NETS"],
        (Kind::ClusterInformation, _) => vec![
            "NAME",
            "CLUSTERGUID",
            "CLUSTERTYPE",
            "CALICOVERSION",
            "DATASTOREREADY",
        ],
        _ => vec!["NAME"],
    }
}

/// Calico's headings for `kind` that `-o custom-columns=` takes: the
/// wide and narrow ones, and NAMESPACE for namespaced kinds.
pub fn known_headings(kind: Kind) -> Vec<&'static str> {
    let mut h = columns(kind, true);
    for c in columns(kind, false) {
        if !h.contains(&c) {
            h.push(c);
        }
    }
    if kind.namespaced() {
        h.push("NAMESPACE");
    }
    h
}

/// The cell of `r` under one of Calico's headings for its kind.
pub fn heading_value(r: &Resource, heading: &str, g: &Globals) -> Option<String> {
    if heading == "NAMESPACE" && r.kind().namespaced() {
        return Some(r.metadata().namespace.clone().unwrap_or_default());
    }
    [true, false].into_iter().find_map(|wide| {
        columns(r.kind(), wide)
            .iter()
            .position(|h| *h == heading)
            .and_then(|i| cells(r, wide, g).into_iter().nth(i))
    })
}

/// A policy's tier, order and selector (NetworkPolicy, GlobalNetworkPolicy
/// and their staged forms).
fn policy_cells(r: &Resource) -> Option<(String, String, String)> {
    let (t, o, s) = match r {
        Resource::NetworkPolicy(p) => (&p.spec.tier, p.spec.order, &p.spec.selector),
        Resource::GlobalNetworkPolicy(p) => (&p.spec.tier, p.spec.order, &p.spec.selector),
        Resource::StagedNetworkPolicy(p) => (
            &p.spec.policy.tier,
            p.spec.policy.order,
            &p.spec.policy.selector,
        ),
        Resource::StagedGlobalNetworkPolicy(p) => (
            &p.spec.policy.tier,
            p.spec.policy.order,
            &p.spec.policy.selector,
        ),
        _ => return None,
    };
    Some((tier(t), order(o), opt(s)))
}

fn cells(r: &Resource, wide: bool, g: &Globals) -> Vec<String> {
    let name = r.metadata().name.clone();
    if let Some((tier, order, selector)) = policy_cells(r) {
        return if wide {
            vec![name, tier, order, selector]
        } else {
            vec![name, tier]
        };
    }
    match (r, wide) {
        (Resource::IPPool(p), false) => vec![
            name,
            p.spec.cidr.clone(),
            p.spec.node_selector().to_string(),
        ],
        (Resource::IPPool(p), true) => vec![
            name,
            p.spec.cidr.clone(),
            bool_s(p.spec.nat_outgoing),
            p.spec.ipip_mode().to_string(),
            p.spec.vxlan_mode().to_string(),
            bool_s(p.spec.disabled),
            bool_s(p.spec.disable_bgp_export),
            p.spec.node_selector().to_string(),
            opt(&p.spec.assignment_mode),
        ],
        (Resource::IPReservation(p), true) => vec![name, join_truncated(&p.spec.reserved_cidrs)],
        (Resource::IPAMConfiguration(c), w) => {
            let mut row = vec![
                name,
                bool_s(c.spec.strict_affinity),
                bool_s(c.spec.auto_allocate_blocks.unwrap_or(true)),
            ];
            if w {
                row.push(c.spec.max_blocks_per_host.unwrap_or(0).to_string());
            }
            row
        }
        (Resource::BGPConfiguration(b), _) => vec![
            name,
            opt(&b.spec.log_severity_screen),
            or_dash(b.spec.node_to_node_mesh_enabled.map(bool_s)),
            or_dash(b.spec.as_number.map(|a| a.to_string())),
        ],
        (Resource::BGPPeer(p), _) => {
            let node = match (&p.spec.node, &p.spec.node_selector) {
                (Some(n), _) if !n.is_empty() => n.clone(),
                (_, Some(s)) if !s.is_empty() => s.clone(),
                _ => "(global)".into(),
            };
            vec![
                name,
                opt(&p.spec.peer_ip),
                node,
                // Go prints an unset number as 0.
                p.spec
                    .as_number
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "0".into()),
            ]
        }
        (Resource::Node(n), true) => {
            // As Calico: the node's AS, else the cluster's in brackets;
            // nothing for a node without BGP.
            let b = n.spec.bgp.clone();
            let asn = match &b {
                Some(b) => b
                    .as_number
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| format!("({})", g.default_as)),
                None => String::new(),
            };
            let b = b.unwrap_or_default();
            vec![name, asn, opt(&b.ipv4_address), opt(&b.ipv6_address)]
        }
        (Resource::WorkloadEndpoint(w), wide) => {
            // As Calico: the workload, else the pod.
            let workload = if w.spec.workload.is_empty() {
                w.spec.pod.clone()
            } else {
                w.spec.workload.clone()
            };
            let mut row = vec![
                workload,
                w.spec.node.clone(),
                w.spec.ip_networks.join(","),
                w.spec.interface_name.clone(),
            ];
            if wide {
                row.insert(0, name);
                row.push(w.spec.profiles.join(","));
                row.push(
                    w.spec
                        .ip_nats
                        .iter()
                        .map(|n| format!("{}->{}", n.external_ip, n.internal_ip))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            row
        }
        (Resource::HostEndpoint(h), false) => vec![name, h.spec.node.clone()],
        (Resource::HostEndpoint(h), true) => vec![
            name,
            h.spec.node.clone(),
            h.spec.interface_name.clone(),
            h.spec.expected_ips.join(","),
            h.spec.profiles.join(","),
        ],
        (Resource::StagedKubernetesNetworkPolicy(_), true) => {
            let sel = r
                .to_json()
                .pointer("/spec/podSelector")
                .map(|v| v.to_string())
                .unwrap_or_default();
            vec![name, sel]
        }
        (Resource::Tier(t), _) => vec![name, order(t.spec.order)],
        (Resource::BGPFilter(f), _) => vec![
            name,
            f.spec.export_v4.len().to_string(),
            f.spec.import_v4.len().to_string(),
            f.spec.export_v6.len().to_string(),
            f.spec.import_v6.len().to_string(),
        ],
        (Resource::Profile(p), true) => {
            vec![
                name,
                p.spec
                    .labels_to_apply
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        }
        (Resource::NetworkSet(s), true) => vec![name, join_truncated(&s.spec.nets)],
        (Resource::GlobalNetworkSet(s), true) => vec![name, join_truncated(&s.spec.nets)],
        (Resource::ClusterInformation(c), _) => vec![
            name,
            opt(&c.spec.cluster_guid),
            opt(&c.spec.cluster_type),
            opt(&c.spec.calico_version),
            c.spec.datastore_ready.map(bool_s).unwrap_or_default(),
        ],
        _ => vec![name],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        for (f, s) in [
            (0.0, "0"),
            (100.0, "100"),
            (10.5, "10.5"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1.5e6, "1.5e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2e7, "-2e+07"),
        ] {
            assert_eq!(go_float(f), s, "{f}");
        }
    }

    #[test]
    fn aligns_like_tabwriter() {
        let t = render(
            &["NAME", "CIDR", "SELECTOR"],
            &[vec![
                "default-ipv4-ippool".into(),
                "192.168.0.0/16".into(),
                "all()".into(),
            ]],
        );
        assert_eq!(
            t,
            "NAME                  CIDR             SELECTOR\ndefault-ipv4-ippool   192.168.0.0/16   all()\n"
        );
    }
}
