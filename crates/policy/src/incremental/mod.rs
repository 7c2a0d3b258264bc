//! Policy kept current by changes, as Felix's calculation graph does: the
//! same [`Ruleset`] as [`compile`](crate::nft::compile::compile) of
//! [`Model::build`](crate::Model::build) of the whole input (the oracle;
//! a property test holds the two equal), at a cost that follows the
//! change, not the cluster.
//!
//! The ruleset has two parts, kept apart:
//! - the **structure**: base and dispatch chains, the chains of the local
//!   endpoints and of the policies and profiles that apply to them, the
//!   sets those refer to (without their elements). It depends on policies,
//!   profiles, tiers, settings and the local endpoints only, and is
//!   compiled again (from policies and profiles resolved once, when they
//!   changed) only when one of those changes;
//! - the **members** of every selector and named-port set the structure
//!   uses: an index from each such set to the endpoints and network sets
//!   it picks, kept by label, address and profile (`labelsToApply`)
//!   changes. A change of one endpoint elsewhere in the cluster costs one
//!   match per set in use, and becomes element adds and deletes.
//!
//! Sets hold disjoint networks ([`netview::NetView`] counts contributors,
//! so a network two endpoints share, or one inside a network set's CIDR,
//! comes and goes right).

pub mod netview;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use calico_api::Resource;
use calico_api::k8s;
use calico_api::meta::Object;
use calico_api::resources::{
    GlobalNetworkPolicySpec, GlobalNetworkSetSpec, HostEndpointSpec, NetworkPolicySpec,
    NetworkSetSpec, ProfileSpec, WorkloadEndpointSpec,
};
use ipnet::IpNet;

use crate::input::{Problem, Tier};
use crate::model::build::{self, PolicyResolution, ProfileLabels};
use crate::model::{Endpoint, EndpointId, Family, Labelled, NamedPort, Profile};
use crate::nft::compile::{SetSource, compile_with_sources};
use crate::nft::diff::{Command, Transaction, diff};
use crate::nft::{Element, Ruleset};
use crate::settings::Settings;
use netview::NetView;

/// Names one input of policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemId {
    /// A Tier.
    Tier(String),
    /// A Calico NetworkPolicy.
    NetworkPolicy {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A GlobalNetworkPolicy.
    GlobalNetworkPolicy(String),
    /// A Kubernetes NetworkPolicy.
    KubernetesNetworkPolicy {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A Profile.
    Profile(String),
    /// A NetworkSet.
    NetworkSet {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A GlobalNetworkSet.
    GlobalNetworkSet(String),
    /// A WorkloadEndpoint.
    WorkloadEndpoint {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A HostEndpoint.
    HostEndpoint(String),
}

/// One input of policy.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // items are moved in once each
pub enum Item {
    /// A Tier.
    Tier(Tier),
    /// A Calico NetworkPolicy.
    NetworkPolicy(Object<NetworkPolicySpec>),
    /// A GlobalNetworkPolicy.
    GlobalNetworkPolicy(Object<GlobalNetworkPolicySpec>),
    /// A Kubernetes NetworkPolicy.
    KubernetesNetworkPolicy(k8s::NetworkPolicy),
    /// A Profile.
    Profile(Object<ProfileSpec>),
    /// A NetworkSet.
    NetworkSet(Object<NetworkSetSpec>),
    /// A GlobalNetworkSet.
    GlobalNetworkSet(Object<GlobalNetworkSetSpec>),
    /// A WorkloadEndpoint; `local`: its interface is on this node.
    WorkloadEndpoint {
        /// The endpoint.
        ep: Object<WorkloadEndpointSpec>,
        /// On this node.
        local: bool,
    },
    /// A HostEndpoint; `local`: its interface is on this node.
    HostEndpoint {
        /// The endpoint.
        ep: Object<HostEndpointSpec>,
        /// On this node.
        local: bool,
    },
}

fn ns_of<T>(o: &Object<T>) -> String {
    o.metadata.namespace.clone().unwrap_or_default()
}

impl Item {
    /// Its id.
    pub fn id(&self) -> ItemId {
        match self {
            Item::Tier(t) => ItemId::Tier(t.name.clone()),
            Item::NetworkPolicy(o) => ItemId::NetworkPolicy {
                namespace: ns_of(o),
                name: o.metadata.name.clone(),
            },
            Item::GlobalNetworkPolicy(o) => ItemId::GlobalNetworkPolicy(o.metadata.name.clone()),
            Item::KubernetesNetworkPolicy(np) => ItemId::KubernetesNetworkPolicy {
                namespace: np.metadata.namespace.clone().unwrap_or_default(),
                name: np.metadata.name.clone(),
            },
            Item::Profile(o) => ItemId::Profile(o.metadata.name.clone()),
            Item::NetworkSet(o) => ItemId::NetworkSet {
                namespace: ns_of(o),
                name: o.metadata.name.clone(),
            },
            Item::GlobalNetworkSet(o) => ItemId::GlobalNetworkSet(o.metadata.name.clone()),
            Item::WorkloadEndpoint { ep, .. } => ItemId::WorkloadEndpoint {
                namespace: ns_of(ep),
                name: ep.metadata.name.clone(),
            },
            Item::HostEndpoint { ep, .. } => ItemId::HostEndpoint(ep.metadata.name.clone()),
        }
    }

    /// The item a resource is, for node `me` (endpoints of `me` with an
    /// interface are local); `None` for kinds policy does not read.
    pub fn from_resource(r: Resource, me: &str) -> Option<Item> {
        Some(match r {
            Resource::Tier(o) => Item::Tier(Tier {
                name: o.metadata.name,
                spec: o.spec,
            }),
            Resource::NetworkPolicy(o) => Item::NetworkPolicy(o),
            Resource::GlobalNetworkPolicy(o) => Item::GlobalNetworkPolicy(o),
            Resource::Profile(o) => Item::Profile(o),
            Resource::NetworkSet(o) => Item::NetworkSet(o),
            Resource::GlobalNetworkSet(o) => Item::GlobalNetworkSet(o),
            Resource::WorkloadEndpoint(ep) => {
                let local = ep.spec.node == me && !ep.spec.interface_name.is_empty();
                Item::WorkloadEndpoint { ep, local }
            }
            Resource::HostEndpoint(ep) => {
                let local = ep.spec.node == me && !ep.spec.interface_name.is_empty();
                Item::HostEndpoint { ep, local }
            }
            _ => return None,
        })
    }
}

/// An endpoint or network set as the set index holds it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `Some` for endpoints: the interface.
    endpoint: Option<String>,
    /// Its own labels (with the `projectcalico.org/…` ones).
    own: BTreeMap<String, String>,
    /// Profiles whose `labelsToApply` it inherits, in order.
    profiles: Vec<String>,
    /// Not namespaced.
    global: bool,
    /// Addresses.
    nets: Vec<IpNet>,
    /// Named ports (endpoints).
    ports: Vec<NamedPort>,
}

impl Entry {
    fn labels(&self, profile_labels: &ProfileLabels) -> BTreeMap<String, String> {
        build::with_inherited(self.own.clone(), &self.profiles, profile_labels)
    }

    fn of_endpoint(ep: Endpoint) -> Entry {
        Entry {
            endpoint: Some(ep.interface),
            own: BTreeMap::new(),
            profiles: ep.profiles,
            global: ep.labelled.global,
            nets: ep.labelled.nets,
            ports: ep.ports,
        }
    }
}

/// A set in use and what is in it, by group (named ports: protocol and
/// port; selector sets: one group).
#[derive(Debug, Clone)]
struct Active {
    source: SetSource,
    groups: BTreeMap<Option<(u8, u16)>, NetView>,
}

impl SetSourceExt for SetSource {
    fn key(&self) -> Option<(String, Vec<String>)> {
        let sel = match self {
            SetSource::Selector { selector, .. } | SetSource::NamedPorts { selector, .. } => {
                selector
            }
        };
        sel.required_values(crate::model::LABEL_NAMESPACE)
            .map(|(k, vs)| (k.to_string(), vs.into_iter().map(str::to_string).collect()))
    }
}

trait SetSourceExt {
    /// The label every member carries one of the values of, if any.
    fn key(&self) -> Option<(String, Vec<String>)>;
}

/// Sets in use by the label their members must carry: only the sets a
/// changed object's labels name (and those without such a label) are
/// matched against it.
#[derive(Debug, Default)]
struct SetIndex {
    keyed: HashMap<String, HashMap<String, BTreeSet<String>>>,
    unkeyed: BTreeSet<String>,
}

impl SetIndex {
    fn insert(&mut self, name: &str, key: Option<(String, Vec<String>)>) {
        match key {
            Some((k, vs)) => {
                let by_value = self.keyed.entry(k).or_default();
                for v in vs {
                    by_value.entry(v).or_default().insert(name.to_string());
                }
            }
            None => {
                self.unkeyed.insert(name.to_string());
            }
        }
    }

    fn remove(&mut self, name: &str, key: Option<(String, Vec<String>)>) {
        match key {
            Some((k, vs)) => {
                if let Some(by_value) = self.keyed.get_mut(&k) {
                    for v in vs {
                        if let Some(names) = by_value.get_mut(&v) {
                            names.remove(name);
                            if names.is_empty() {
                                by_value.remove(&v);
                            }
                        }
                    }
                    if by_value.is_empty() {
                        self.keyed.remove(&k);
                    }
                }
            }
            None => {
                self.unkeyed.remove(name);
            }
        }
    }

    /// The sets an object with `labels` may be in.
    fn candidates(&self, labels: &BTreeMap<String, String>, out: &mut BTreeSet<String>) {
        for (k, v) in labels {
            if let Some(names) = self.keyed.get(k).and_then(|m| m.get(v)) {
                out.extend(names.iter().cloned());
            }
        }
    }
}

fn element(group: Option<(u8, u16)>, n: IpNet) -> Element {
    match group {
        None => Element::Net(n),
        Some((p, port)) => Element::NamedPort(n, p, port),
    }
}

/// What `e` (with labels `labels`) puts into a set of `source`.
fn contribution(
    source: &SetSource,
    e: &Entry,
    labels: &BTreeMap<String, String>,
) -> Vec<(Option<(u8, u16)>, IpNet)> {
    let fam = |f: Family| e.nets.iter().filter(move |n| Family::of(n) == f);
    match source {
        SetSource::Selector { family, selector } => {
            if selector.matches_with(labels, e.global) {
                fam(*family).map(|n| (None, *n)).collect()
            } else {
                Vec::new()
            }
        }
        SetSource::NamedPorts {
            family,
            selector,
            names,
        } => {
            if e.endpoint.is_none() || !selector.matches_with(labels, e.global) {
                return Vec::new();
            }
            let mut out = Vec::new();
            for p in e.ports.iter().filter(|p| names.contains(&p.name)) {
                out.extend(fam(*family).map(|n| (Some((p.protocol, p.port)), *n)));
            }
            out
        }
    }
}

/// Puts element commands into `tx` after the sets, maps and chains it
/// creates and before anything else (rules refer to sets by then; set
/// deletions come after their elements go).
fn splice_elements(tx: &mut Transaction, elements: Vec<Command>) {
    let at = tx
        .commands
        .iter()
        .position(|c| {
            !matches!(
                c,
                Command::AddSet(..) | Command::AddMap(..) | Command::AddChain(..)
            )
        })
        .unwrap_or(tx.commands.len());
    tx.commands.splice(at..at, elements);
}

/// Element changes waiting for the next script, per set: `true` add,
/// `false` delete (an add and a delete of one element cancel).
type Pending = BTreeMap<String, BTreeMap<Element, bool>>;

fn note(pending: &mut Pending, set: &str, el: Element, add: bool) {
    let p = pending.entry(set.to_string()).or_default();
    match p.get(&el) {
        Some(was) if *was != add => {
            p.remove(&el);
        }
        _ => {
            p.insert(el, add);
        }
    }
}

/// The policy state of one node, changed item by item.
#[derive(Debug)]
pub struct Incremental {
    settings: Settings,
    tiers: BTreeMap<String, Tier>,
    /// Resolved policies (with conversion problems), by item.
    policies: BTreeMap<ItemId, (PolicyResolution, Vec<Problem>)>,
    profiles: BTreeMap<String, Result<Profile, Problem>>,
    profile_labels: ProfileLabels,
    entries: HashMap<ItemId, Entry>,
    entry_problems: BTreeMap<ItemId, Vec<Problem>>,
    /// Local items and their interfaces.
    local: BTreeMap<ItemId, String>,
    /// Interfaces of local items, counted.
    local_ifaces: HashMap<String, usize>,
    host_endpoints: BTreeSet<ItemId>,
    active: BTreeMap<String, Active>,
    index: SetIndex,
    structure: Ruleset,
    structure_problems: Vec<Problem>,
    dirty: bool,
    /// Moves on with every change that makes the structure dirty.
    epoch: u64,
    /// The last structure compiled ahead of a rebuild
    /// ([`Incremental::preview_structure`]), with the epoch it is of.
    compiled: std::cell::RefCell<Option<(u64, Compiled)>>,
    pending: Pending,
}

/// A compiled structure: the ruleset with its sourced sets empty, the
/// sources of those sets, the problems found.
type Compiled = (Ruleset, BTreeMap<String, SetSource>, Vec<Problem>);

impl Incremental {
    /// Nothing yet, with these settings.
    pub fn new(settings: Settings) -> Incremental {
        Incremental {
            settings,
            tiers: BTreeMap::new(),
            policies: BTreeMap::new(),
            profiles: BTreeMap::new(),
            profile_labels: ProfileLabels::new(),
            entries: HashMap::new(),
            entry_problems: BTreeMap::new(),
            local: BTreeMap::new(),
            local_ifaces: HashMap::new(),
            host_endpoints: BTreeSet::new(),
            active: BTreeMap::new(),
            index: SetIndex::default(),
            structure: Ruleset::default(),
            structure_problems: Vec::new(),
            dirty: true,
            epoch: 0,
            compiled: std::cell::RefCell::new(None),
            pending: Pending::new(),
        }
    }

    /// Replaces the settings.
    pub fn set_settings(&mut self, s: Settings) {
        if s != self.settings {
            self.settings = s;
            self.mark_dirty();
        }
    }

    /// Adds or replaces an item.
    pub fn upsert(&mut self, item: Item) {
        let id = item.id();
        match item {
            Item::Tier(t) => {
                self.tiers.insert(t.name.clone(), t);
                self.mark_dirty();
            }
            Item::NetworkPolicy(o) => {
                self.policies
                    .insert(id, (build::calico_network_policy(&o), Vec::new()));
                self.mark_dirty();
            }
            Item::GlobalNetworkPolicy(o) => {
                self.policies
                    .insert(id, (build::calico_global_network_policy(&o), Vec::new()));
                self.mark_dirty();
            }
            Item::KubernetesNetworkPolicy(k) => {
                self.policies
                    .insert(id, build::kubernetes_network_policy(&k));
                self.mark_dirty();
            }
            Item::Profile(p) => self.set_profile(&p),
            Item::NetworkSet(s) => {
                let mut problems = Vec::new();
                let l = build::network_set(&s, &ProfileLabels::new(), &mut problems);
                let ns = s
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let entry = Entry {
                    endpoint: None,
                    own: l.labels,
                    profiles: vec![build::network_set_profile(&ns)],
                    global: false,
                    nets: l.nets,
                    ports: Vec::new(),
                };
                self.set_entry(id, Some(entry), problems, None);
            }
            Item::GlobalNetworkSet(s) => {
                let mut problems = Vec::new();
                let l = build::global_network_set(&s, &mut problems);
                let entry = Entry {
                    endpoint: None,
                    own: l.labels,
                    profiles: Vec::new(),
                    global: true,
                    nets: l.nets,
                    ports: Vec::new(),
                };
                self.set_entry(id, Some(entry), problems, None);
            }
            Item::WorkloadEndpoint { ep, local } => {
                let mut problems = Vec::new();
                let e = build::workload(&ep, local, &ProfileLabels::new(), &mut problems);
                let own = e.labelled.labels.clone();
                let mut entry = Entry::of_endpoint(e);
                entry.own = own;
                let iface = local.then(|| ep.spec.interface_name.clone());
                self.set_entry(id, Some(entry), problems, iface);
            }
            Item::HostEndpoint { ep, local } => {
                let mut problems = Vec::new();
                let e = build::host(&ep, local, &ProfileLabels::new(), &mut problems);
                let entry = e.map(|e| {
                    let own = e.labelled.labels.clone();
                    let mut entry = Entry::of_endpoint(e);
                    entry.own = own;
                    entry
                });
                let iface = local.then(|| ep.spec.interface_name.clone());
                self.host_endpoints.insert(id.clone());
                self.set_entry(id, entry, problems, iface);
            }
        }
    }

    /// Removes an item (nothing when it is not there).
    pub fn remove(&mut self, id: &ItemId) {
        match id {
            ItemId::Tier(name) => {
                if self.tiers.remove(name).is_some() {
                    self.mark_dirty();
                }
            }
            ItemId::NetworkPolicy { .. }
            | ItemId::GlobalNetworkPolicy(_)
            | ItemId::KubernetesNetworkPolicy { .. } => {
                if self.policies.remove(id).is_some() {
                    self.mark_dirty();
                }
            }
            ItemId::Profile(name) => self.remove_profile(name),
            ItemId::HostEndpoint(_) => {
                self.host_endpoints.remove(id);
                self.set_entry(id.clone(), None, Vec::new(), None);
            }
            ItemId::NetworkSet { .. }
            | ItemId::GlobalNetworkSet(_)
            | ItemId::WorkloadEndpoint { .. } => {
                self.set_entry(id.clone(), None, Vec::new(), None);
            }
        }
    }

    /// Whether `e` gets chains: its interface is a local one (as the
    /// whole computation decides it, by interface name).
    fn in_structure(&self, e: Option<&Entry>) -> bool {
        e.and_then(|e| e.endpoint.as_ref())
            .is_some_and(|iface| self.local_ifaces.contains_key(iface))
    }

    fn set_entry(
        &mut self,
        id: ItemId,
        new: Option<Entry>,
        problems: Vec<Problem>,
        local_iface: Option<String>,
    ) {
        // Local bookkeeping first: it decides what the structure holds.
        let was_local = self.local.remove(&id);
        if let Some(i) = &was_local
            && let Some(n) = self.local_ifaces.get_mut(i)
        {
            *n -= 1;
            if *n == 0 {
                self.local_ifaces.remove(i);
            }
        }
        if let Some(i) = &local_iface {
            self.local.insert(id.clone(), i.clone());
            *self.local_ifaces.entry(i.clone()).or_default() += 1;
        }
        let old = self.entries.remove(&id);
        if was_local.is_some()
            || local_iface.is_some()
            || self.in_structure(old.as_ref())
            || self.in_structure(new.as_ref())
        {
            self.mark_dirty();
        }
        if problems.is_empty() {
            self.entry_problems.remove(&id);
        } else {
            self.entry_problems.insert(id.clone(), problems);
        }
        // No set in use yet (the start-up list, before the first
        // structure): nothing to move; the first rebuild fills every set.
        if !self.active.is_empty() {
            let old_labels = old.as_ref().map(|e| e.labels(&self.profile_labels));
            let new_labels = new.as_ref().map(|e| e.labels(&self.profile_labels));
            self.move_members(
                old.as_ref().zip(old_labels.as_ref()),
                new.as_ref().zip(new_labels.as_ref()),
            );
        }
        if let Some(n) = new {
            self.entries.insert(id, n);
        }
    }

    /// Moves one item's contributions in every set in use from `old` to
    /// `new` (entry and its labels), noting the element changes.
    fn move_members(
        &mut self,
        old: Option<(&Entry, &BTreeMap<String, String>)>,
        new: Option<(&Entry, &BTreeMap<String, String>)>,
    ) {
        let mut names = self.index.unkeyed.clone();
        for (_, l) in old.iter().chain(new.iter()) {
            self.index.candidates(l, &mut names);
        }
        for name in names {
            let Some(a) = self.active.get_mut(&name) else {
                continue;
            };
            let before = old.map_or_else(Vec::new, |(e, l)| contribution(&a.source, e, l));
            let after = new.map_or_else(Vec::new, |(e, l)| contribution(&a.source, e, l));
            if before == after {
                continue;
            }
            let pending = &mut self.pending;
            for (g, n) in before {
                let view = a.groups.entry(g).or_default();
                view.remove(n, &mut |m, add| note(pending, &name, element(g, m), add));
            }
            for (g, n) in after {
                let view = a.groups.entry(g).or_default();
                view.add(n, &mut |m, add| note(pending, &name, element(g, m), add));
            }
            a.groups.retain(|_, v| !v.is_empty());
        }
    }

    fn set_profile(&mut self, p: &Object<ProfileSpec>) {
        let name = p.metadata.name.clone();
        self.profiles.insert(name.clone(), build::profile(p));
        self.mark_dirty();
        let labels = p.spec.labels_to_apply.clone();
        self.relabel(&name, Some(labels));
    }

    fn remove_profile(&mut self, name: &str) {
        if self.profiles.remove(name).is_some() {
            self.mark_dirty();
        }
        self.relabel(name, None);
    }

    /// Gives profile `name` these `labelsToApply` and moves the members of
    /// every item that inherits them.
    fn relabel(&mut self, name: &str, labels: Option<BTreeMap<String, String>>) {
        if self.profile_labels.get(name) == labels.as_ref() {
            return;
        }
        // A scan: profiles' labels change rarely (a namespace relabelled),
        // and an index from profile to items would cost a copy of every
        // item's id.
        let ids: Vec<ItemId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.profiles.iter().any(|p| p == name))
            .map(|(id, _)| id.clone())
            .collect();
        let before: Vec<BTreeMap<String, String>> = ids
            .iter()
            .filter_map(|id| self.entries.get(id))
            .map(|e| e.labels(&self.profile_labels))
            .collect();
        match labels {
            Some(l) => self.profile_labels.insert(name.to_string(), l),
            None => self.profile_labels.remove(name),
        };
        let entries: Vec<Entry> = ids
            .iter()
            .filter_map(|id| self.entries.get(id).cloned())
            .collect();
        for (e, old) in entries.iter().zip(before) {
            let new = e.labels(&self.profile_labels);
            if self.in_structure(Some(e)) {
                self.mark_dirty();
            }
            if new != old {
                self.move_members(Some((e, &old)), Some((e, &new)));
            }
        }
    }

    /// The endpoints that get chains, as the whole computation has them
    /// (a scan, done only when the structure is compiled again).
    fn structure_endpoints(&self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        for (id, e) in &self.entries {
            let Some(iface) = &e.endpoint else { continue };
            if !self.local_ifaces.contains_key(iface) {
                continue;
            }
            let eid = match id {
                ItemId::WorkloadEndpoint { namespace, name } => {
                    let ns = if namespace.is_empty() {
                        "default"
                    } else {
                        namespace
                    };
                    EndpointId::workload(ns, name)
                }
                ItemId::HostEndpoint(name) => EndpointId::host(name),
                _ => continue,
            };
            out.push(Endpoint {
                id: eid,
                interface: iface.clone(),
                labelled: Labelled {
                    labels: e.labels(&self.profile_labels),
                    global: e.global,
                    nets: e.nets.clone(),
                },
                ports: e.ports.clone(),
                profiles: e.profiles.clone(),
                local: true,
            });
        }
        out
    }

    /// Compiles the structure again; sets new to it are filled from every
    /// entry, sets it no longer uses are dropped.
    /// The table's structure as it stands: every set fed by endpoints and
    /// network sets empty (the others whole), without taking anything in.
    /// A caller can load it while the sets are being filled (see
    /// [`Incremental::settle`]).
    pub fn preview_structure(&self) -> Ruleset {
        if !self.dirty {
            return self.structure.clone();
        }
        let c = self.compile_structure();
        let rs = c.0.clone();
        // Kept for the rebuild that follows unless something changes first.
        *self.compiled.borrow_mut() = Some((self.epoch, c));
        rs
    }

    /// Marks the structure for a rebuild.
    fn mark_dirty(&mut self) {
        self.dirty = true;
        self.epoch += 1;
    }

    /// Compiles the structure: the ruleset with its sourced sets emptied,
    /// the sources of those sets, and the problems found.
    fn compile_structure(&self) -> Compiled {
        let mut policies = Vec::new();
        for ((tier, _, r), _) in self.policies.values() {
            if let Ok(p) = r {
                policies.push((tier.clone(), p.clone()));
            }
        }
        let profiles: BTreeMap<String, Profile> = self
            .profiles
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), p.as_ref().ok()?.clone())))
            .collect();
        let tiers: Vec<Tier> = self.tiers.values().cloned().collect();
        let model = build::assemble(
            &self.settings,
            &tiers,
            policies,
            profiles,
            self.structure_endpoints(),
            Vec::new(),
            Vec::new(),
        );
        let problems = model.problems.clone();
        let (mut rs, sources) = compile_with_sources(&model);
        for name in sources.keys() {
            if let Some(s) = rs.sets.get_mut(name) {
                s.elements.clear();
            }
        }
        (rs, sources, problems)
    }

    fn rebuild(&mut self) -> Ruleset {
        let (rs, sources, problems) = match self.compiled.borrow_mut().take() {
            Some((epoch, c)) if epoch == self.epoch => c,
            _ => self.compile_structure(),
        };
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|n| !sources.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(a) = self.active.remove(&name) {
                self.index.remove(&name, a.source.key());
            }
        }
        self.pending.retain(|n, _| sources.contains_key(n));
        // New sets are filled in one pass over every entry, each entry
        // matched only against the new sets its labels name.
        let mut fresh = SetIndex::default();
        let mut new_sets: BTreeMap<String, Active> = BTreeMap::new();
        for (name, source) in sources {
            if self.active.contains_key(&name) {
                continue;
            }
            fresh.insert(&name, source.key());
            new_sets.insert(
                name,
                Active {
                    source,
                    groups: BTreeMap::new(),
                },
            );
        }
        if !new_sets.is_empty() {
            let mut names = BTreeSet::new();
            for e in self.entries.values() {
                let labels = e.labels(&self.profile_labels);
                names.clear();
                names.extend(fresh.unkeyed.iter().cloned());
                fresh.candidates(&labels, &mut names);
                for name in &names {
                    let Some(a) = new_sets.get_mut(name) else {
                        continue;
                    };
                    for (g, n) in contribution(&a.source, e, &labels) {
                        a.groups.entry(g).or_default().add(n, &mut |_, _| {});
                    }
                }
            }
        }
        for (name, a) in new_sets {
            // A set new to the structure goes in whole: no deltas.
            self.pending.remove(&name);
            self.index.insert(&name, a.source.key());
            self.active.insert(name, a);
        }
        self.structure_problems = problems;
        self.dirty = false;
        rs
    }

    /// Takes in every change since the last call without making a
    /// transaction of it: for a caller about to load [`Incremental::full`]
    /// anyway (at start, after a failure), which would throw the
    /// transaction away. The next transaction starts from here.
    pub fn settle(&mut self) {
        if self.dirty {
            self.structure = self.rebuild();
        }
        self.pending.clear();
    }

    /// The nft transaction from the state of the last call to the current
    /// one (the caller loads [`Incremental::full`] instead when the kernel
    /// may hold anything else: at start and after a failure).
    pub fn take_script(&mut self) -> String {
        let tx = self.take_transaction();
        if tx.is_empty() {
            String::new()
        } else {
            tx.to_string()
        }
    }

    /// [`Incremental::take_script`] as commands.
    pub fn take_transaction(&mut self) -> Transaction {
        let mut tx = Transaction::default();
        let mut fresh: Vec<String> = Vec::new();
        if self.dirty {
            let new = self.rebuild();
            tx = diff(&self.structure, &new);
            fresh = new
                .sets
                .keys()
                .filter(|n| !self.structure.sets.contains_key(*n) && self.active.contains_key(*n))
                .cloned()
                .collect();
            self.structure = new;
        }
        let mut elements = Vec::new();
        for (name, changes) in std::mem::take(&mut self.pending) {
            if fresh.contains(&name) || !self.structure.sets.contains_key(&name) {
                continue;
            }
            let gone: Vec<Element> = changes
                .iter()
                .filter(|(_, add)| !**add)
                .map(|(e, _)| e.clone())
                .collect();
            if !gone.is_empty() {
                elements.push(Command::DeleteElements(name.clone(), gone));
            }
            let added: Vec<Element> = changes
                .into_iter()
                .filter(|(_, add)| *add)
                .map(|(e, _)| e)
                .collect();
            if !added.is_empty() {
                elements.push(Command::AddElements(name, added));
            }
        }
        for name in fresh {
            let all = self.elements_of(&name);
            if !all.is_empty() {
                elements.push(Command::AddElements(name, all.into_iter().collect()));
            }
        }
        // Deletes before adds across sets too; all after the sets exist
        // and before any rule or set deletion.
        elements.sort_by_key(|c| matches!(c, Command::AddElements(..)));
        splice_elements(&mut tx, elements);
        tx
    }

    fn elements_of(&self, set: &str) -> BTreeSet<Element> {
        self.active
            .get(set)
            .map(|a| {
                a.groups
                    .iter()
                    .flat_map(|(g, v)| v.view().map(|n| element(*g, n)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The transaction from `from` (a [`Incremental::preview_structure`]
    /// loaded into the kernel) to the whole table as of the last
    /// [`Incremental::settle`] or transaction: the structure's changes,
    /// and every endpoint-fed set's members (empty in `from`). Costs the
    /// members, not a comparison of whole rulesets.
    pub fn transaction_from_structure(&self, from: &Ruleset) -> Transaction {
        let mut tx = diff(from, &self.structure);
        let mut adds = Vec::new();
        for name in self.structure.sets.keys() {
            if !self.active.contains_key(name) {
                continue;
            }
            let have: BTreeSet<Element> = from
                .sets
                .get(name)
                .map(|s| s.elements.clone())
                .unwrap_or_default();
            let missing: Vec<Element> = self
                .elements_of(name)
                .into_iter()
                .filter(|e| !have.contains(e))
                .collect();
            if !missing.is_empty() {
                adds.push(Command::AddElements(name.clone(), missing));
            }
        }
        splice_elements(&mut tx, adds);
        tx
    }

    /// The whole table: the structure as of the last
    /// [`Incremental::take_script`], every set with its members now.
    pub fn ruleset(&self) -> Ruleset {
        let mut rs = self.structure.clone();
        for (name, s) in &mut rs.sets {
            if self.active.contains_key(name) {
                s.elements = self.elements_of(name);
            }
        }
        rs
    }

    /// [`Incremental::ruleset`] as one `nft -f` text replacing the table.
    pub fn full(&self) -> String {
        self.ruleset().full()
    }

    /// What could not be enforced.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .profiles
            .values()
            .filter_map(|p| p.clone().err())
            .collect();
        out.extend(self.entry_problems.values().flatten().cloned());
        for ((_, id, r), converted) in self.policies.values() {
            out.extend(converted.iter().cloned());
            if let Err(e) = r {
                out.push(Problem::new(id, e.clone()));
            }
        }
        out.extend(self.structure_problems.iter().cloned());
        out
    }

    /// (tiers, policies, profiles, host endpoints).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.tiers.len(),
            self.policies.len(),
            self.profiles.len(),
            self.host_endpoints.len(),
        )
    }

    /// Endpoints and network sets held, and selector sets in use.
    pub fn sizes(&self) -> (usize, usize) {
        (self.entries.len(), self.active.len())
    }
}

#[cfg(test)]
mod tests;
