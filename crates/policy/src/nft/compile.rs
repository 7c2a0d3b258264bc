//! Model → nftables ruleset for the endpoints of one node.
//!
//! Names (all deterministic, 16 hex digits of [`short_hash`]):
//!
//! | object | name | named after |
//! | --- | --- | --- |
//! | policy chain | `pi-…` / `po-…` (ingress / egress) | the policy's identity |
//! | profile chain | `pri-…` / `pro-…` | the profile's name |
//! | endpoint chain | `tw-…` / `fw-…` (to / from workload), `fh-…` / `th-…` (from / to host endpoint) | its content |
//! | log chain | `log-…` | its content |
//! | selector set | `s4-…` / `s6-…` | the effective selector |
//! | net set | `n4-…` / `n6-…` | the networks |
//! | named-port set | `np4-…` / `np6-…` | selector and port names |
//!
//! A policy's chain keeps its name when its rules change (it is flushed and
//! refilled); an endpoint chain is named after its content, so endpoints with
//! the same ordered tiers, policies and profiles share it, and a change of
//! that list re-points the endpoint's map entries to another chain.

use std::collections::BTreeSet;
use std::net::IpAddr;

use calico_api::selector::Selector;
use ipnet::IpNet;

use super::{
    Chain, CtState, Element, Family, Hook, Iface, Map, Match, Rule, Ruleset, Set, SetKind, Side,
    Statement, Verdict, disjoint_nets, short_hash,
};
use crate::model::{self, Action, Direction, Endpoint, EndpointKind, Entity, Model, proto};
use crate::settings::EndpointToHostAction;

/// Fixed chain and map names.
pub mod names {
    /// Base chain of the forward hook.
    pub const FORWARD: &str = "forward";
    /// Base chain of the input hook.
    pub const INPUT: &str = "input";
    /// Base chain of the output hook.
    pub const OUTPUT: &str = "output";
    /// Egress policy of the workload a packet comes from.
    pub const FROM_WL: &str = "from-wl";
    /// Ingress policy of the workload a packet goes to.
    pub const TO_WL: &str = "to-wl";
    /// Workload → its host: egress policy, then `defaultEndpointToHostAction`.
    pub const WL_TO_HOST: &str = "wl-to-host";
    /// Failsafe inbound ports.
    pub const FAILSAFE_IN: &str = "failsafe-in";
    /// Failsafe outbound ports.
    pub const FAILSAFE_OUT: &str = "failsafe-out";
    /// Map: workload interface → its egress chain.
    pub const WL_FROM: &str = "wl-from";
    /// Map: workload interface → its ingress chain.
    pub const WL_TO: &str = "wl-to";
    /// Map: host endpoint interface → its ingress chain.
    pub const HEP_FROM: &str = "hep-from";
    /// Map: host endpoint interface → its egress chain.
    pub const HEP_TO: &str = "hep-to";
}

/// The ruleset that enforces `m` on the local endpoints of `m`.
pub fn compile(m: &Model) -> Ruleset {
    compile_with_sources(m).0
}

/// What a set's elements come from, when they depend on more than the
/// rule that refers to it.
#[derive(Debug, Clone, PartialEq)]
pub enum SetSource {
    /// The addresses of `family` of every endpoint and network set the
    /// selector picks (a selector set, `s4-…`/`s6-…`).
    Selector {
        /// Address family.
        family: Family,
        /// The effective selector.
        selector: Selector,
    },
    /// (address, protocol, port) of the named ports `names` of every
    /// endpoint the selector picks (`np4-…`/`np6-…`).
    NamedPorts {
        /// Address family.
        family: Family,
        /// The selector of the endpoints.
        selector: Selector,
        /// Port names.
        names: Vec<String>,
    },
}

/// [`compile`], and for every selector and named-port set of the result,
/// what its elements come from (so that they can be kept current without
/// compiling again).
pub fn compile_with_sources(m: &Model) -> (Ruleset, std::collections::BTreeMap<String, SetSource>) {
    let mut c = Compiler {
        m,
        r: Ruleset::default(),
        sources: std::collections::BTreeMap::new(),
    };
    c.static_chains();
    for ep in m.endpoints.iter().filter(|e| e.local) {
        c.endpoint(ep);
    }
    (c.r, c.sources)
}

struct Compiler<'m> {
    m: &'m Model,
    r: Ruleset,
    sources: std::collections::BTreeMap<String, SetSource>,
}

fn family_digit(f: Family) -> char {
    match f {
        Family::V4 => '4',
        Family::V6 => '6',
    }
}

fn mark(bits: u32, set: bool) -> Match {
    Match::Mark { bits, set }
}

fn iface(dir: Iface, name: &str) -> Match {
    Match::Iface {
        dir,
        name: name.to_string(),
    }
}

fn vmap(dir: Iface, map: &str) -> Rule {
    Rule::new(
        vec![],
        Verdict::Vmap {
            dir,
            map: map.into(),
        },
    )
}

fn l4(proto: u8) -> Match {
    Match::L4Proto { proto, neg: false }
}

fn dport(port: u16) -> Match {
    Match::Ports {
        side: Side::Dst,
        neg: false,
        ranges: vec![(port, port)],
    }
}

fn statement_rule(s: Statement) -> Rule {
    Rule {
        statements: vec![s],
        ..Rule::default()
    }
}

impl Compiler<'_> {
    fn chain(&mut self, name: &str, hook: Option<Hook>, comment: Option<String>, rules: Vec<Rule>) {
        self.r.chains.insert(
            name.to_string(),
            Chain {
                hook,
                comment,
                rules,
            },
        );
    }

    fn static_chains(&mut self) {
        self.base_chains();
        self.dispatch_chains();
        self.workload_to_host_chain();
        let s = &self.m.settings;
        let failsafe_in = self.failsafe(&s.failsafe_inbound, Side::Src);
        self.chain(names::FAILSAFE_IN, None, None, failsafe_in);
        let failsafe_out = self.failsafe(&s.failsafe_outbound, Side::Dst);
        self.chain(names::FAILSAFE_OUT, None, None, failsafe_out);
        for map in [names::WL_FROM, names::WL_TO, names::HEP_FROM, names::HEP_TO] {
            self.r.maps.insert(map.into(), Map::default());
        }
    }

    /// forward, input and output: conntrack, clear the marks, dispatch.
    fn base_chains(&mut self) {
        use names::*;
        let overlay_in = self.overlay_between_hosts(Side::Src);
        let overlay_out = self.overlay_between_hosts(Side::Dst);
        let s = &self.m.settings;
        let mut conntrack = vec![Rule::new(
            vec![Match::Ct(CtState::EstablishedRelated)],
            Verdict::Accept,
        )];
        if s.drop_invalid {
            conntrack.push(Rule::new(vec![Match::Ct(CtState::Invalid)], Verdict::Drop));
        }
        let clear_all = statement_rule(Statement::ClearMark(s.marks.all()));
        let per_prefix = |dir: Iface, verdict: Verdict| -> Vec<Rule> {
            s.workload_prefixes
                .iter()
                .map(|p| Rule::new(vec![iface(dir, &format!("{p}*"))], verdict.clone()))
                .collect()
        };

        let mut forward = conntrack.clone();
        forward.push(clear_all.clone());
        forward.extend(per_prefix(Iface::In, Verdict::Jump(FROM_WL.into())));
        forward.extend(per_prefix(Iface::Out, Verdict::Jump(TO_WL.into())));

        let mut input = conntrack.clone();
        input.push(clear_all.clone());
        input.extend(per_prefix(Iface::In, Verdict::Goto(WL_TO_HOST.into())));
        input.extend(overlay_in);
        input.push(vmap(Iface::In, HEP_FROM));

        let mut output = conntrack;
        let not_policed = per_prefix(Iface::Out, Verdict::Accept)
            .into_iter()
            .map(|r| r.comment("host to local workload: not policed"));
        output.extend(not_policed);
        output.push(clear_all);
        output.extend(overlay_out);
        output.push(vmap(Iface::Out, HEP_TO));

        self.chain(FORWARD, Some(Hook::Forward), None, forward);
        self.chain(INPUT, Some(Hook::Input), None, input);
        self.chain(OUTPUT, Some(Hook::Output), None, output);
    }

    /// VXLAN and IP-in-IP packets from (`Side::Src`) or to (`Side::Dst`)
    /// the cluster's hosts: accepted before host endpoint policy, as Felix
    /// does, so that policy on a node's interface keeps the overlay up.
    fn overlay_between_hosts(&mut self, peer: Side) -> Vec<Rule> {
        let mut rules = Vec::new();
        for fam in [Family::V4, Family::V6] {
            let hosts: Vec<IpNet> = self
                .m
                .settings
                .hosts
                .iter()
                .filter(|a| {
                    matches!(
                        (fam, a),
                        (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
                    )
                })
                .map(|&a| IpNet::from(a))
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let set = self.net_set(fam, &hosts);
            let addr = Match::Addr {
                family: fam,
                side: peer,
                neg: false,
                set,
            };
            let vxlan = vec![
                Match::NfProto(fam),
                l4(proto::UDP),
                dport(self.m.settings.vxlan_port),
                addr.clone(),
            ];
            rules.push(Rule::new(vxlan, Verdict::Accept).comment("VXLAN between hosts"));
            if fam == Family::V4 {
                let ipip = vec![Match::NfProto(fam), l4(proto::IPIP), addr];
                rules.push(Rule::new(ipip, Verdict::Accept).comment("IP-in-IP between hosts"));
            }
        }
        rules
    }

    /// from-wl and to-wl: one map lookup; an unknown workload interface is dropped.
    fn dispatch_chains(&mut self) {
        use names::*;
        let accept = self.m.settings.marks.accept;
        for (name, dir, map) in [(FROM_WL, Iface::In, WL_FROM), (TO_WL, Iface::Out, WL_TO)] {
            let rules = vec![
                statement_rule(Statement::ClearMark(accept)),
                vmap(dir, map),
                Rule::new(vec![mark(accept, false)], Verdict::Drop)
                    .comment("unknown workload interface"),
            ];
            self.chain(name, None, None, rules);
        }
    }

    /// Workload → its host: IPv6 neighbour discovery, egress policy, then
    /// `defaultEndpointToHostAction`.
    fn workload_to_host_chain(&mut self) {
        let mut rules: Vec<Rule> = [130u8, 131, 132, 133, 135, 136]
            .iter()
            .map(|&t| {
                let icmp = Match::IcmpType {
                    family: Family::V6,
                    value: t,
                    neg: false,
                };
                Rule::new(
                    vec![Match::NfProto(Family::V6), l4(proto::ICMPV6), icmp],
                    Verdict::Accept,
                )
            })
            .collect();
        rules.push(Rule::new(vec![], Verdict::Jump(names::FROM_WL.into())));
        let action = match self.m.settings.endpoint_to_host {
            EndpointToHostAction::Drop => Verdict::Drop,
            EndpointToHostAction::Accept => Verdict::Accept,
            EndpointToHostAction::Return => Verdict::Return,
        };
        rules.push(Rule::new(vec![], action).comment("defaultEndpointToHostAction"));
        self.chain(names::WL_TO_HOST, None, None, rules);
    }

    fn failsafe(&mut self, ports: &[crate::settings::FailsafePort], peer: Side) -> Vec<Rule> {
        ports
            .iter()
            .map(|f| {
                let mut matches = Vec::new();
                if let Some(n) = f.net {
                    let fam = Family::of(&n);
                    matches.push(Match::NfProto(fam));
                    let set = self.net_set(fam, &[n]);
                    matches.push(Match::Addr {
                        family: fam,
                        side: peer,
                        neg: false,
                        set,
                    });
                }
                matches.push(l4(f.protocol));
                matches.push(dport(f.port));
                Rule::new(matches, Verdict::Accept)
            })
            .collect()
    }

    /// Chains and map entries of one local endpoint.
    fn endpoint(&mut self, ep: &Endpoint) {
        use names::*;
        let (ingress_map, egress_map, ingress_prefix, egress_prefix) = match ep.id.kind {
            EndpointKind::Workload => (WL_TO, WL_FROM, "tw", "fw"),
            EndpointKind::Host => (HEP_FROM, HEP_TO, "fh", "th"),
        };
        for (dir, map, prefix) in [
            (Direction::Ingress, ingress_map, ingress_prefix),
            (Direction::Egress, egress_map, egress_prefix),
        ] {
            let chain = self.endpoint_chain(ep, dir, prefix);
            if let Some(m) = self.r.maps.get_mut(map) {
                m.elements
                    .entry(ep.interface.clone())
                    .or_insert(Verdict::Jump(chain));
            }
        }
    }

    /// What runs before an endpoint's policy: failsafe ports for host
    /// endpoints, the encapsulation drops for workload egress.
    fn endpoint_preamble(&self, ep: &Endpoint, dir: Direction) -> Vec<Rule> {
        let s = &self.m.settings;
        let jump = |chain: &str| vec![Rule::new(vec![], Verdict::Jump(chain.into()))];
        match (ep.id.kind, dir) {
            (EndpointKind::Host, Direction::Ingress) => jump(names::FAILSAFE_IN),
            (EndpointKind::Host, Direction::Egress) => jump(names::FAILSAFE_OUT),
            (EndpointKind::Workload, Direction::Ingress) => Vec::new(),
            (EndpointKind::Workload, Direction::Egress) => {
                let mut rules = Vec::new();
                if !s.allow_vxlan_from_workloads {
                    let vxlan = vec![l4(proto::UDP), dport(s.vxlan_port)];
                    rules.push(Rule::new(vxlan, Verdict::Drop).comment("VXLAN from workloads"));
                }
                if !s.allow_ipip_from_workloads {
                    let ipip = vec![l4(proto::IPIP)];
                    rules.push(Rule::new(ipip, Verdict::Drop).comment("IP-in-IP from workloads"));
                }
                rules
            }
        }
    }

    fn endpoint_chain(&mut self, ep: &Endpoint, dir: Direction, prefix: &str) -> String {
        let m = self.m;
        let s = &m.settings;
        let marks = s.marks;
        let mut rules = self.endpoint_preamble(ep, dir);
        for (tier, policies) in m.applicable(ep, dir) {
            rules.push(
                statement_rule(Statement::ClearMark(marks.pass))
                    .comment(format!("tier {}", tier.name)),
            );
            for pol in policies {
                let chain = self.policy_chain(pol, dir);
                rules.push(Rule::new(
                    vec![mark(marks.pass, false)],
                    Verdict::Jump(chain),
                ));
                rules.push(Rule::new(vec![mark(marks.accept, true)], Verdict::Return));
            }
            if !tier.pass_by_default {
                rules.push(
                    Rule::new(vec![mark(marks.pass, false)], Verdict::Drop)
                        .comment(format!("end of tier {}", tier.name)),
                );
            }
        }
        for name in &ep.profiles {
            if let Some(chain) = self.profile_chain(name, dir) {
                rules.push(Rule::new(vec![], Verdict::Jump(chain)));
                rules.push(Rule::new(vec![mark(marks.accept, true)], Verdict::Return));
            }
        }
        rules.push(Rule::new(vec![], Verdict::Drop).comment("no profile accepted"));
        let name = format!("{prefix}-{}", short_hash(&render_rules(&rules)));
        if !self.r.chains.contains_key(&name) {
            self.chain(&name, None, None, rules);
        }
        name
    }

    fn policy_chain(&mut self, pol: &model::Policy, dir: Direction) -> String {
        let (prefix, word) = match dir {
            Direction::Ingress => ("pi", "ingress"),
            Direction::Egress => ("po", "egress"),
        };
        let name = format!("{prefix}-{}", short_hash(&pol.id.to_string()));
        if !self.r.chains.contains_key(&name) {
            let rules = self.rules(pol.rules(dir).unwrap_or_default());
            self.chain(&name, None, Some(format!("{} {word}", pol.id)), rules);
        }
        name
    }

    fn profile_chain(&mut self, profile: &str, dir: Direction) -> Option<String> {
        let p = self.m.profile(profile)?;
        let (prefix, word) = match dir {
            Direction::Ingress => ("pri", "ingress"),
            Direction::Egress => ("pro", "egress"),
        };
        let name = format!("{prefix}-{}", short_hash(profile));
        if !self.r.chains.contains_key(&name) {
            let rules = self.rules(p.rules(dir));
            self.chain(
                &name,
                None,
                Some(format!("Profile({profile}) {word}")),
                rules,
            );
        }
        Some(name)
    }

    fn rules(&mut self, rules: &[model::Rule]) -> Vec<Rule> {
        rules.iter().flat_map(|r| self.rule(r)).collect()
    }

    /// One policy rule as nft rules: one per alternative of its conditions.
    fn rule(&mut self, r: &model::Rule) -> Vec<Rule> {
        let marks = self.m.settings.marks;
        let (statements, verdict) = match r.action {
            Action::Allow => (
                vec![Statement::SetMark(marks.accept)],
                Some(Verdict::Return),
            ),
            Action::Pass => (vec![Statement::SetMark(marks.pass)], Some(Verdict::Return)),
            Action::Deny => (vec![], Some(Verdict::Drop)),
            Action::Log => (
                vec![Statement::Log(format!("{}: ", self.m.settings.log_prefix))],
                None,
            ),
        };
        let disjuncts = self.disjuncts(r);
        if r.action == Action::Log && disjuncts.len() > 1 {
            // Log once however many alternatives match: try them in a chain of their own.
            let rules: Vec<Rule> = disjuncts
                .into_iter()
                .map(|matches| Rule {
                    matches,
                    statements: statements.clone(),
                    verdict: Some(Verdict::Return),
                    comment: None,
                })
                .collect();
            let name = format!("log-{}", short_hash(&render_rules(&rules)));
            if !self.r.chains.contains_key(&name) {
                self.chain(&name, None, None, rules);
            }
            return vec![Rule::new(vec![], Verdict::Jump(name))];
        }
        disjuncts
            .into_iter()
            .map(|matches| Rule {
                matches,
                statements: statements.clone(),
                verdict: verdict.clone(),
                comment: None,
            })
            .collect()
    }

    /// The rule's conditions as alternatives, each a list of nft matches that
    /// must all hold: one per IP family it needs × port alternatives (numbers
    /// or named ports) × the two ways of failing a `notICMP` type+code.
    fn disjuncts(&mut self, r: &model::Rule) -> Vec<Vec<Match>> {
        let families: Vec<Option<Family>> = if needs_family(r) {
            Family::BOTH
                .into_iter()
                .filter(|f| r.ip_version.is_none_or(|v| v == *f))
                .filter(|f| has_family(&r.src.nets, *f) && has_family(&r.dst.nets, *f))
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        let mut out = Vec::new();
        for fam in families {
            let mut base = Vec::new();
            if let Some(f) = fam {
                base.push(Match::NfProto(f));
            }
            if let Some(p) = r.protocol {
                base.push(l4(p));
            }
            if let Some(p) = r.not_protocol {
                base.push(Match::L4Proto {
                    proto: p,
                    neg: true,
                });
            }
            let icmp_family = if r.protocol == Some(proto::ICMPV6) {
                Family::V6
            } else {
                Family::V4
            };
            if let Some(i) = r.icmp {
                base.push(Match::IcmpType {
                    family: icmp_family,
                    value: i.icmp_type,
                    neg: false,
                });
                if let Some(code) = i.code {
                    base.push(Match::IcmpCode {
                        family: icmp_family,
                        value: code,
                        neg: false,
                    });
                }
            }
            for (side, e) in [(Side::Src, &r.src), (Side::Dst, &r.dst)] {
                base.extend(self.entity_matches(fam, side, e));
            }
            let mut alternatives = vec![base];
            for (side, e) in [(Side::Src, &r.src), (Side::Dst, &r.dst)] {
                let alts = self.port_alternatives(fam, side, e);
                alternatives = product(alternatives, &alts);
            }
            if let Some(i) = r.not_icmp {
                let not_type = Match::IcmpType {
                    family: icmp_family,
                    value: i.icmp_type,
                    neg: true,
                };
                let alts = match i.code {
                    None => vec![vec![not_type]],
                    Some(code) => vec![
                        vec![not_type],
                        vec![
                            Match::IcmpType {
                                family: icmp_family,
                                value: i.icmp_type,
                                neg: false,
                            },
                            Match::IcmpCode {
                                family: icmp_family,
                                value: code,
                                neg: true,
                            },
                        ],
                    ],
                };
                alternatives = product(alternatives, &alts);
            }
            out.extend(alternatives);
        }
        out
    }

    /// Address and negative-port conditions of one side (they are all required).
    fn entity_matches(&mut self, fam: Option<Family>, side: Side, e: &Entity) -> Vec<Match> {
        let mut out = Vec::new();
        // Port numbers do not depend on the address family.
        if !e.not_ports.ranges.is_empty() {
            out.push(Match::Ports {
                side,
                neg: true,
                ranges: e.not_ports.ranges.clone(),
            });
        }
        let Some(f) = fam else { return out };
        let nets: Vec<IpNet> = e
            .nets
            .iter()
            .filter(|n| Family::of(n) == f)
            .copied()
            .collect();
        if !nets.is_empty() {
            let set = self.net_set(f, &nets);
            out.push(Match::Addr {
                family: f,
                side,
                neg: false,
                set,
            });
        }
        let not_nets: Vec<IpNet> = e
            .not_nets
            .iter()
            .filter(|n| Family::of(n) == f)
            .copied()
            .collect();
        if !not_nets.is_empty() {
            let set = self.net_set(f, &not_nets);
            out.push(Match::Addr {
                family: f,
                side,
                neg: true,
                set,
            });
        }
        if let Some(sel) = &e.selector {
            let set = self.selector_set(f, sel);
            out.push(Match::Addr {
                family: f,
                side,
                neg: false,
                set,
            });
        }
        if let Some(sel) = &e.not_selector {
            let set = self.selector_set(f, sel);
            out.push(Match::Addr {
                family: f,
                side,
                neg: true,
                set,
            });
        }
        if !e.not_ports.names.is_empty() {
            let set = self.named_port_set(f, &e.named_port_selector(), &e.not_ports.names);
            out.push(Match::NamedPort {
                family: f,
                side,
                neg: true,
                set,
            });
        }
        out
    }

    /// The ways the side's `ports` can match: numbers, or named ports.
    fn port_alternatives(
        &mut self,
        fam: Option<Family>,
        side: Side,
        e: &Entity,
    ) -> Vec<Vec<Match>> {
        if e.ports.is_empty() {
            return vec![Vec::new()];
        }
        let mut alts = Vec::new();
        if !e.ports.ranges.is_empty() {
            alts.push(vec![Match::Ports {
                side,
                neg: false,
                ranges: e.ports.ranges.clone(),
            }]);
        }
        if let (Some(f), false) = (fam, e.ports.names.is_empty()) {
            let set = self.named_port_set(f, &e.named_port_selector(), &e.ports.names);
            alts.push(vec![Match::NamedPort {
                family: f,
                side,
                neg: false,
                set,
            }]);
        }
        alts
    }

    fn add_set(
        &mut self,
        name: &str,
        kind: SetKind,
        comment: String,
        elements: impl FnOnce(&Model) -> BTreeSet<Element>,
    ) {
        if !self.r.sets.contains_key(name) {
            let elements = elements(self.m);
            self.r.sets.insert(
                name.to_string(),
                Set {
                    kind,
                    comment,
                    elements,
                },
            );
        }
    }

    fn selector_set(&mut self, f: Family, sel: &Selector) -> String {
        let key = sel.to_string();
        let name = format!("s{}-{}", family_digit(f), short_hash(&key));
        self.sources
            .entry(name.clone())
            .or_insert_with(|| SetSource::Selector {
                family: f,
                selector: sel.clone(),
            });
        self.add_set(&name, SetKind::Addr(f), key, |m| {
            let nets = m
                .labelled
                .iter()
                .filter(|l| l.matches(sel))
                .flat_map(|l| l.nets.iter().copied())
                .filter(|n| Family::of(n) == f);
            disjoint_nets(nets).into_iter().map(Element::Net).collect()
        });
        name
    }

    fn net_set(&mut self, f: Family, nets: &[IpNet]) -> String {
        let nets = disjoint_nets(nets.iter().copied());
        let key: Vec<String> = nets.iter().map(ToString::to_string).collect();
        let key = key.join(", ");
        let name = format!("n{}-{}", family_digit(f), short_hash(&key));
        self.add_set(&name, SetKind::Addr(f), key, |_| {
            nets.into_iter().map(Element::Net).collect()
        });
        name
    }

    fn named_port_set(&mut self, f: Family, sel: &Selector, port_names: &[String]) -> String {
        let key = format!("{sel} ports {}", port_names.join(","));
        let name = format!("np{}-{}", family_digit(f), short_hash(&key));
        self.sources
            .entry(name.clone())
            .or_insert_with(|| SetSource::NamedPorts {
                family: f,
                selector: sel.clone(),
                names: port_names.to_vec(),
            });
        self.add_set(&name, SetKind::NamedPort(f), key, |m| {
            let mut by_port: std::collections::BTreeMap<(u8, u16), Vec<IpNet>> = Default::default();
            for ep in m.endpoints.iter().filter(|e| e.labelled.matches(sel)) {
                for np in ep.ports.iter().filter(|p| port_names.contains(&p.name)) {
                    let nets = ep.labelled.nets.iter().filter(|n| Family::of(n) == f);
                    by_port
                        .entry((np.protocol, np.port))
                        .or_default()
                        .extend(nets);
                }
            }
            by_port
                .into_iter()
                .flat_map(|((p, port), nets)| {
                    disjoint_nets(nets)
                        .into_iter()
                        .map(move |n| Element::NamedPort(n, p, port))
                })
                .collect()
        });
        name
    }
}

fn render_rules(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every combination of one alternative from `a` and one from `b`.
fn product(a: Vec<Vec<Match>>, b: &[Vec<Match>]) -> Vec<Vec<Match>> {
    a.into_iter()
        .flat_map(|x| {
            b.iter().map(move |y| {
                let mut v = x.clone();
                v.extend(y.iter().cloned());
                v
            })
        })
        .collect()
}

fn needs_family(r: &model::Rule) -> bool {
    let side = |e: &Entity| {
        !e.nets.is_empty()
            || !e.not_nets.is_empty()
            || e.selector.is_some()
            || e.not_selector.is_some()
            || !e.ports.names.is_empty()
            || !e.not_ports.names.is_empty()
    };
    r.ip_version.is_some() || side(&r.src) || side(&r.dst)
}

/// Whether a `nets` list can match addresses of family `f` (empty: any).
fn has_family(nets: &[IpNet], f: Family) -> bool {
    nets.is_empty() || nets.iter().any(|n| Family::of(n) == f)
}
