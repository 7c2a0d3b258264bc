//! The dataplane writers the engine drives, one trait per outside surface,
//! each with a recording fake for tests without root:
//! - [`Routes`]: routes, the VXLAN device and its neighbour and forwarding
//!   entries (netlink, [`NetlinkRoutes`]);
//! - [`Tables`]: nftables scripts, each one transaction (`nft -f`, [`Nft`]);
//!   set elements over netlink; at a fresh start, the policy table built
//!   dormant in the background and woken with its elements in one commit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_dataplane::Netlink;
use calico_dataplane::netlink::{Kind, Route, RouteOp, Scope};
use ipnet::IpNet;

use super::calc::Flush;
use crate::felix::apply::{self, Changes, Grace, PROTO_CALICO, VXLAN_DEVICE};
use crate::felix::model::{Desired, Item};

/// The kernel's routing, as the engine changes it.
pub trait Routes {
    /// Applies one flush's route changes; `desired` is the whole state
    /// after them (for what cannot be done by key).
    fn apply(&mut self, flush: &Flush, desired: &Desired) -> Result<Changes, String>;
    /// Brings the kernel in line with `desired` whole, reading what is
    /// there (start, periodic resync, after a failure).
    fn resync(&mut self, desired: &Desired) -> Result<Changes, String>;
}

/// nftables.
pub trait Tables {
    /// Runs one `nft -f` script: one transaction, all or nothing.
    fn run(&mut self, script: &str) -> Result<(), String>;
    /// Makes a whole table equal to `doc` unless the kernel's copy already
    /// carries `doc`'s hash (`felix::nat::marker`); `Ok(true)` when it ran.
    fn replace_table(&mut self, doc: &str) -> Result<bool, String>;
    /// Applies one policy transaction (by default as an `nft -f` script).
    fn apply_policy(&mut self, tx: &calico_policy::Transaction) -> Result<(), String> {
        self.run(&tx.to_string())
    }
    /// The kernel's nftables generation, which moves on with every
    /// committed change by anyone (`None`: unknown, so every periodic
    /// check reloads the policy table).
    fn generation(&mut self) -> Option<u32> {
        None
    }
    /// Whether the policy table is in the kernel at all (`false`: a fresh
    /// start, where the table can be built out of sight first).
    fn policy_table_exists(&mut self) -> bool {
        true
    }
    /// Starts loading `rs` as the policy table made dormant (its chains on
    /// no hook, so it decides nothing yet), without waiting for it.
    fn load_dormant(&mut self, _rs: &calico_policy::nft::Ruleset) -> Result<(), String> {
        Err("no dormant load here".into())
    }
    /// Waits for [`Tables::load_dormant`] to end.
    fn finish_dormant(&mut self) -> Result<(), String> {
        Err("no dormant load here".into())
    }
    /// Brings the dormant table by `tx` and wakes it: the set elements and
    /// the waking are one commit, so the table takes effect complete.
    /// Returns the number of commits made.
    fn wake_policy(&mut self, _tx: &calico_policy::Transaction) -> Result<u32, String> {
        Err("no dormant load here".into())
    }
}

/// `tx` split into its address-set element changes (what netlink does
/// alone, by set) and the rest, in order.
pub fn split_elements(
    tx: &calico_policy::Transaction,
) -> (
    calico_policy::Transaction,
    Vec<calico_dataplane::nftables::SetChange>,
) {
    let mut rest = calico_policy::Transaction::default();
    let mut nets = calico_policy::Transaction::default();
    for c in &tx.commands {
        let one = calico_policy::Transaction {
            commands: vec![c.clone()],
        };
        if element_changes(&one).is_some() {
            nets.commands.push(c.clone());
        } else {
            rest.commands.push(c.clone());
        }
    }
    (rest, element_changes(&nets).unwrap_or_default())
}

/// The set element changes of `tx` by set, when that is all it is (and
/// every element is an address or network): what netlink can do alone.
pub fn element_changes(
    tx: &calico_policy::Transaction,
) -> Option<Vec<calico_dataplane::nftables::SetChange>> {
    use calico_dataplane::nftables::SetChange;
    use calico_policy::nft::Element;
    use calico_policy::nft::diff::Command;
    let mut by_set: BTreeMap<&str, SetChange> = BTreeMap::new();
    for c in &tx.commands {
        let (name, elements, add) = match c {
            Command::AddElements(n, e) => (n, e, true),
            Command::DeleteElements(n, e) => (n, e, false),
            _ => return None,
        };
        let change = by_set.entry(name).or_insert_with(|| SetChange {
            set: name.clone(),
            ..SetChange::default()
        });
        for e in elements {
            let Element::Net(n) = e else { return None };
            if add {
                change.add.push(*n);
            } else {
                change.delete.push(*n);
            }
        }
    }
    Some(by_set.into_values().collect())
}

/// [`Tables`] through the `nft` command, and set elements through netlink
/// (`nft -f` reads every set of the table before it changes one element;
/// the netlink batch reads nothing).
#[derive(Default)]
pub struct Nft {
    nl: Option<calico_dataplane::nftables::NfTables>,
    /// The dormant policy table's `nft -f`, still running.
    background: Option<std::process::Child>,
}

impl Nft {
    fn netlink(&mut self) -> Result<&mut calico_dataplane::nftables::NfTables, String> {
        if self.nl.is_none() {
            self.nl =
                Some(calico_dataplane::nftables::NfTables::open().map_err(|e| e.to_string())?);
        }
        self.nl
            .as_mut()
            .ok_or_else(|| "no netfilter netlink socket".to_string())
    }

    /// Waits for the background load, if any.
    fn finish_background(&mut self) -> Result<(), String> {
        match self.background.take() {
            Some(child) => crate::felix::nat::nft_finish(child),
            None => Ok(()),
        }
    }

    fn table_name() -> &'static str {
        calico_policy::nft::TABLE
            .strip_prefix("inet ")
            .unwrap_or(calico_policy::nft::TABLE)
    }
}

impl Tables for Nft {
    fn run(&mut self, script: &str) -> Result<(), String> {
        // A dormant load still running goes first (its failure is the
        // caller's to see through `wake_policy`; here it only must end).
        let _ = self.finish_background();
        crate::felix::nat::nft_script(script)
    }

    fn replace_table(&mut self, doc: &str) -> Result<bool, String> {
        crate::felix::nat::apply(doc)
    }

    fn apply_policy(&mut self, tx: &calico_policy::Transaction) -> Result<(), String> {
        let Some(changes) = element_changes(tx) else {
            return self.run(&tx.to_string());
        };
        let table = Self::table_name();
        let r = self
            .netlink()?
            .apply(table, &changes)
            .map_err(|e| e.to_string());
        if r.is_err() {
            // A socket that failed may be out of step: a new one next time.
            self.nl = None;
        }
        r
    }

    fn generation(&mut self) -> Option<u32> {
        let r = self.netlink().ok()?.generation();
        if r.is_err() {
            self.nl = None;
        }
        r.ok()
    }

    fn policy_table_exists(&mut self) -> bool {
        let out = std::process::Command::new("nft")
            .args(["list", "tables", "inet"])
            .output();
        match out {
            // Only a clear "not there" counts: anything unclear takes the
            // usual whole load.
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == format!("table {}", calico_policy::nft::TABLE)),
            _ => true,
        }
    }

    fn load_dormant(&mut self, rs: &calico_policy::nft::Ruleset) -> Result<(), String> {
        let _ = self.finish_background();
        self.background = Some(crate::felix::nat::nft_start(&dormant(&rs.full()))?);
        Ok(())
    }

    fn finish_dormant(&mut self) -> Result<(), String> {
        self.finish_background()
    }

    fn wake_policy(&mut self, tx: &calico_policy::Transaction) -> Result<u32, String> {
        self.finish_background()?;
        let (rest, nets) = split_elements(tx);
        let mut commits = 0;
        if !rest.is_empty() {
            crate::felix::nat::nft_script(&rest.to_string())?;
            commits += 1;
        }
        let table = Self::table_name();
        let r = self
            .netlink()?
            .apply_and_wake(table, &nets)
            .map_err(|e| e.to_string());
        if r.is_err() {
            self.nl = None;
        }
        r.map(|()| commits + 1)
    }
}

/// A whole-table script ([`calico_policy::nft::Ruleset::full`]) whose table
/// is made dormant: the flag goes into the block that creates it.
pub fn dormant(full: &str) -> String {
    let open = format!("table {} {{\n", calico_policy::nft::TABLE);
    full.replacen(&open, &format!("{open}  flags dormant\n"), 1)
}

/// [`Routes`] over a netlink socket of this namespace.
#[derive(Default)]
pub struct NetlinkRoutes {
    nl: Option<Netlink>,
    grace: Grace,
    /// Conntrack deletions under way, by the addresses they clear.
    forgetting: Vec<(BTreeSet<IpAddr>, std::thread::JoinHandle<()>)>,
}

impl NetlinkRoutes {
    /// Opens its socket on first use.
    pub fn new() -> NetlinkRoutes {
        NetlinkRoutes::default()
    }

    fn socket(&mut self) -> Result<&mut Netlink, String> {
        if self.nl.is_none() {
            self.nl = Some(Netlink::open().map_err(|e| e.to_string())?);
        }
        self.nl
            .as_mut()
            .ok_or_else(|| "no netlink socket".to_string())
    }
}

fn route_of(dst: IpNet) -> Route {
    Route::new(dst).protocol(PROTO_CALICO)
}

impl Routes for NetlinkRoutes {
    fn resync(&mut self, desired: &Desired) -> Result<Changes, String> {
        let mut grace = std::mem::take(&mut self.grace);
        let r = self
            .socket()
            .and_then(|nl| apply::apply(nl, desired, &mut grace).map_err(|e| e.to_string()));
        self.grace = grace;
        if r.is_err() {
            // A socket that failed may be out of step: a new one next time.
            self.nl = None;
        }
        r
    }

    fn apply(&mut self, flush: &Flush, desired: &Desired) -> Result<Changes, String> {
        self.forgetting.retain(|(_, h)| !h.is_finished());
        // As Felix: an address routed again waits until the deletion of
        // its old flows is over, so none of the new pod's flows is lost.
        let routed_again = |addrs: &BTreeSet<IpAddr>| {
            flush.workload_routes.iter().any(|(n, to)| {
                to.is_some() && n.prefix_len() == n.max_prefix_len() && addrs.contains(&n.addr())
            })
        };
        let mut i = 0;
        while i < self.forgetting.len() {
            if routed_again(&self.forgetting[i].0) {
                let (_, h) = self.forgetting.swap_remove(i);
                let _ = h.join();
            } else {
                i += 1;
            }
        }
        if !flush.forget.is_empty()
            && let Some(h) = forget_flows(flush.forget.clone())
        {
            if routed_again(&flush.forget) {
                // Moved to another interface in this same flush.
                let _ = h.join();
            } else {
                self.forgetting.push((flush.forget.clone(), h));
            }
        }
        // IP-in-IP routes need tunl0's checks, and a removed workload route
        // the grace period: both by the whole comparison.
        let whole = flush.full_routes
            || flush
                .items
                .iter()
                .any(|(i, _)| matches!(i, Item::IpipRoute(..)))
            || flush.workload_routes.values().any(Option::is_none);
        if whole {
            return self.resync(desired);
        }
        let mut c = Changes::default();
        let nl = self.socket()?;
        let needs_vxlan = flush.items.iter().any(|(i, _)| {
            matches!(
                i,
                Item::VxlanRoute(..) | Item::Neighbour(..) | Item::Fdb(..)
            )
        });
        let vx = if needs_vxlan {
            match nl.link(VXLAN_DEVICE).map_err(|e| e.to_string())? {
                Some(l) => Some(l.index),
                None if desired.vxlan.is_some() => return self.resync(desired),
                None => None,
            }
        } else {
            None
        };
        let mut ops: Vec<RouteOp> = Vec::new();
        for (item, add) in &flush.items {
            let route = match *item {
                Item::Blackhole(n) => Some(route_of(n).kind(Kind::Blackhole)),
                Item::VxlanRoute(n, via) => vx.map(|ix| route_of(n).via(via).dev(ix).onlink()),
                Item::DirectRoute(n, via) => Some(route_of(n).via(via)),
                Item::IpipRoute(..) => None,
                Item::Neighbour(ip, mac) => {
                    if let Some(ix) = vx {
                        neighbour(nl, ix, ip, mac, *add)?;
                        count(&mut c, *add);
                    }
                    None
                }
                Item::Fdb(mac, ip) => {
                    if let Some(ix) = vx {
                        fdb(nl, ix, mac, ip, *add)?;
                        count(&mut c, *add);
                    }
                    None
                }
            };
            if let Some(r) = route {
                count(&mut c, *add);
                ops.push(if *add {
                    RouteOp::Replace(r)
                } else {
                    RouteOp::Delete(r)
                });
            }
        }
        let mut by_name: BTreeMap<&str, Option<u32>> = BTreeMap::new();
        for (dst, iface) in &flush.workload_routes {
            let Some(iface) = iface else { continue };
            let index = match by_name.get(iface.as_str()) {
                Some(i) => *i,
                None => {
                    let i = nl.link(iface).map_err(|e| e.to_string())?.map(|l| l.index);
                    by_name.insert(iface, i);
                    i
                }
            };
            // No interface (yet): the plugin routes it when it makes it.
            if let Some(ix) = index {
                ops.push(RouteOp::Replace(
                    Route::new(*dst).dev(ix).scope(Scope::Link),
                ));
                c.added += 1;
            }
        }
        let failures = nl.route_batch(&ops);
        if let Some((_, e)) = failures.into_iter().next() {
            return Err(e.to_string());
        }
        Ok(c)
    }
}

/// Deletes the conntrack entries of `addrs` in the background (a large
/// table takes a while to read), as Felix does when a workload's route
/// goes; a failure is logged, the next pod's flows are its own anyway once
/// their entries time out.
fn forget_flows(addrs: BTreeSet<IpAddr>) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("conntrack".into())
        .spawn(move || {
            match calico_dataplane::conntrack::Conntrack::open().and_then(|mut c| c.forget(&addrs))
            {
                Ok(n) => log::debug!("removed {n} conntrack entries of {addrs:?}"),
                Err(e) => log::warn!("cannot remove the conntrack entries of {addrs:?}: {e}"),
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            log::warn!("cannot start removing conntrack entries: {e}");
            None
        }
    }
}

fn count(c: &mut Changes, add: bool) {
    if add {
        c.added += 1;
    } else {
        c.removed += 1;
    }
}

fn neighbour(nl: &mut Netlink, ix: u32, ip: IpAddr, mac: [u8; 6], add: bool) -> Result<(), String> {
    let r = if add {
        nl.set_neighbour(ix, ip, mac)
    } else {
        nl.delete_neighbour(ix, ip)
    };
    match r {
        Err(e) if add || !e.is_not_found() => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn fdb(nl: &mut Netlink, ix: u32, mac: [u8; 6], ip: IpAddr, add: bool) -> Result<(), String> {
    let r = if add {
        nl.set_fdb(ix, mac, ip)
    } else {
        nl.delete_fdb(ix, mac, ip)
    };
    match r {
        Err(e) if add || !e.is_not_found() => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// What a recording writer was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// [`Routes::apply`] with the flush's items and workload routes.
    Apply {
        /// Items, in order.
        items: Vec<(Item, bool)>,
        /// Workload routes.
        workload_routes: BTreeMap<IpNet, Option<String>>,
        /// Addresses whose conntrack entries are to go.
        forget: BTreeSet<IpAddr>,
        /// Whether it asked for everything.
        full: bool,
    },
    /// [`Routes::resync`].
    Resync,
    /// [`Tables::run`] with the script.
    Nft(String),
    /// [`Tables::replace_table`] with the document.
    Table(String),
    /// [`Tables::load_dormant`] with the ruleset.
    Dormant(Box<calico_policy::nft::Ruleset>),
    /// [`Tables::wake_policy`] with the transaction.
    Wake(calico_policy::Transaction),
}

/// A fake of both writers that records every call in one list (so their
/// order shows) and can be told to fail.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// Calls, in order.
    pub calls: std::sync::Arc<std::sync::Mutex<Vec<Call>>>,
    /// Fail the next this-many calls.
    pub fail: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The nftables generation: moved on by every successful table write
    /// (a test moves it by hand to stand for someone else's change).
    pub generation: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// A kernel without the policy table (a fresh start): the engine may
    /// build it dormant. Cleared by the dormant load.
    pub fresh: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Fail the next [`Tables::wake_policy`].
    pub fail_wake: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Recording {
    fn record(&self, call: Call) -> Result<(), String> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
        let f = &self.fail;
        let failing = f
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if failing {
            Err("recording writer told to fail".into())
        } else {
            Ok(())
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Routes for Recording {
    fn apply(&mut self, flush: &Flush, _desired: &Desired) -> Result<Changes, String> {
        self.record(Call::Apply {
            items: flush.items.clone(),
            workload_routes: flush.workload_routes.clone(),
            forget: flush.forget.clone(),
            full: flush.full_routes,
        })?;
        Ok(Changes::default())
    }

    fn resync(&mut self, _desired: &Desired) -> Result<Changes, String> {
        self.record(Call::Resync)?;
        Ok(Changes::default())
    }
}

impl Tables for Recording {
    fn run(&mut self, script: &str) -> Result<(), String> {
        self.record(Call::Nft(script.to_string()))?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn replace_table(&mut self, doc: &str) -> Result<bool, String> {
        self.record(Call::Table(doc.to_string()))?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(true)
    }

    fn generation(&mut self) -> Option<u32> {
        Some(self.generation.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn policy_table_exists(&mut self) -> bool {
        !self.fresh.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn load_dormant(&mut self, rs: &calico_policy::nft::Ruleset) -> Result<(), String> {
        self.record(Call::Dormant(Box::new(rs.clone())))?;
        self.fresh.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn finish_dormant(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn wake_policy(&mut self, tx: &calico_policy::Transaction) -> Result<u32, String> {
        self.record(Call::Wake(tx.clone()))?;
        if self
            .fail_wake
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err("recording writer told to fail the wake".into());
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(1)
    }
}
