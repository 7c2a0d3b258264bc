//! The spine of calico-node's dataplane work: datastore changes in, kernel
//! changes out, each costing what the change is, not what the cluster is.
//!
//! ```text
//!  datastore ──list once, then watch /calico/──▶ Syncer ─▶ Cache (key → revision; ignored keys stop here)
//!                                                            │ Change (put/delete of one key)
//!                                                            ▼
//!                    Calc (pure: routes by block, policy by selector index, BGP share by block)
//!                                                            │ Flush (deltas since the last one)
//!                                                            ▼
//!        Engine ── Routes (netlink batch) · Tables (one nft transaction per table) · BGP inputs (channel)
//! ```
//!
//! - [`cache`]: which keys matter and at which revision the engine holds
//!   them; a re-list after a lost watch becomes only the real differences.
//! - [`calc`]: the calculation, event in and deltas out.
//! - [`writer`]: the dataplane writers behind traits, with a recording fake.
//! - [`Engine`]: batching (every change already waiting goes into one
//!   flush: a burst is a few nft transactions and netlink batches; a single
//!   change goes at once), full loads at start, after a failure and after
//!   the datastore is unlocked, and the periodic resync, which compares the
//!   kernel with the held state and never re-reads the datastore.
//! - [`run`]: the thread that does it all against the real datastore and
//!   kernel.

pub mod cache;
pub mod calc;
pub mod writer;

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use calico_datastore::{Client, Revision, StoreError};

use crate::health::Health;
use crate::metrics::Metrics;
use cache::{Cache, Change};
use calc::{BgpView, Calc, Flush};
use writer::{Routes, Tables};

/// At most this many changes go into one flush.
pub const MAX_BATCH: usize = 20_000;

/// What one flush or resync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Routes and entries added.
    pub added: usize,
    /// Routes and entries removed.
    pub removed: usize,
    /// nft transactions run.
    pub nft_runs: usize,
    /// nft transactions that failed.
    pub nft_failures: usize,
    /// Whether the policy table was loaded whole.
    pub policy_full: bool,
    /// Lines of policy script applied.
    pub policy_lines: usize,
    /// What failed (the next flush loads that part whole again).
    pub failed: Vec<String>,
    /// The writers' problems (e.g. no tunl0).
    pub problems: Vec<String>,
}

/// The calculation and its writers.
pub struct Engine<R: Routes, T: Tables> {
    calc: Calc,
    routes: R,
    tables: T,
    /// The kernel holds the routes as `calc` had them at the last flush.
    routes_in_step: bool,
    /// Likewise the policy table.
    policy_in_step: bool,
    /// Likewise `inet calico`.
    nat_in_step: bool,
    /// The nftables generation at which the policy table was last known to
    /// be exactly as written: every commit since was one of ours. The
    /// periodic check reloads the table only when the kernel's generation
    /// differs (someone else changed nftables) or is unknown.
    policy_gen: Option<u32>,
    /// Whether [`Engine::dormant_wanted`] has looked already.
    early_checked: bool,
    bgp: Option<Sender<BgpView>>,
    route_problems: Vec<String>,
    /// When the routes want reading back again (a stray route spared for
    /// its new interface's grace period).
    route_recheck: Option<Instant>,
}

impl<R: Routes, T: Tables> Engine<R, T> {
    /// An engine whose first flush loads everything whole.
    pub fn new(calc: Calc, routes: R, tables: T, bgp: Option<Sender<BgpView>>) -> Self {
        Engine {
            calc,
            routes,
            tables,
            routes_in_step: false,
            policy_in_step: false,
            nat_in_step: false,
            policy_gen: None,
            early_checked: false,
            bgp,
            route_problems: Vec::new(),
            route_recheck: None,
        }
    }

    /// The calculation.
    pub fn calc(&self) -> &Calc {
        &self.calc
    }

    /// Takes in one change.
    pub fn apply(&mut self, change: Change) {
        self.calc.apply(change);
    }

    /// Takes the next flush's changes to the kernel. While the datastore is
    /// locked nothing is written (as Felix, during a migration); the first
    /// flush after it loads everything whole.
    pub fn flush(&mut self) -> Report {
        let mut rep = Report::default();
        // A fresh start: the routes first (whole, from the held state:
        // while nft loads, netlink is slow), then the policy table's
        // structure loads dormant while the sets are filled.
        let dormant = if self.dormant_wanted() {
            self.write_routes(&Flush::default(), true, &mut rep);
            self.start_dormant()
        } else {
            None
        };
        // Loading the policy table whole (out of step, or locked and so
        // out of step after): no transaction to make.
        let f = self
            .calc
            .take_with(!self.policy_in_step || self.calc.locked());
        if let (Some(view), Some(tx)) = (&f.bgp, &self.bgp) {
            let _ = tx.send(view.clone());
        }
        if self.calc.locked() {
            self.routes_in_step = false;
            self.policy_in_step = false;
            self.nat_in_step = false;
            return rep;
        }
        match dormant {
            // `inet calico` after the policy table: an nft commit waits for
            // the dormant load's (one commit at a time per namespace).
            Some(rs) => {
                self.wake_policy(&rs, &mut rep);
                self.write_nat(f.nat.as_deref(), false, &mut rep);
            }
            None => {
                self.write_routes(&f, false, &mut rep);
                self.write_nat(f.nat.as_deref(), false, &mut rep);
                self.write_policy(&f.policy, false, &mut rep);
            }
        }
        rep.problems = self.problems();
        rep
    }

    /// Whether the policy table is to be built dormant ([`Engine::start_dormant`]):
    /// a fresh start, with no policy table in the kernel (looked at once).
    fn dormant_wanted(&mut self) -> bool {
        !std::mem::replace(&mut self.early_checked, true)
            && !self.policy_in_step
            && !self.calc.locked()
            && !self.tables.policy_table_exists()
    }

    /// On a fresh start ([`Engine::dormant_wanted`]): the table's structure,
    /// its endpoint-fed sets empty, starts loading dormant in the
    /// background (the kernel's share of a whole load is mostly creating
    /// sets and chains) while this thread fills the sets; the same flush
    /// then brings the dormant table to the whole state and wakes it,
    /// elements and waking in one commit ([`Engine::wake_policy`]). A
    /// restart, where the running table must be replaced atomically, loads
    /// it whole as usual. Returns the dormant structure.
    fn start_dormant(&mut self) -> Option<calico_policy::nft::Ruleset> {
        let rs = self.calc.policy().preview_structure();
        match self.tables.load_dormant(&rs) {
            Ok(()) => Some(rs),
            Err(e) => {
                log::warn!("policy: cannot build the table dormant ({e}): loading it whole");
                None
            }
        }
    }

    /// The flush after [`Engine::start_dormant`]: the dormant table is
    /// brought from `dormant` to the whole state and woken; on any failure
    /// the table is loaded whole instead.
    fn wake_policy(&mut self, dormant: &calico_policy::nft::Ruleset, rep: &mut Report) {
        let tx = self.calc.policy().transaction_from_structure(dormant);
        let tx = &tx;
        let t = Instant::now();
        rep.nft_runs += 1;
        let r = self.tables.finish_dormant().and_then(|()| {
            let before = self.tables.generation();
            self.tables.wake_policy(tx).map(|commits| (before, commits))
        });
        match r {
            Ok((before, commits)) => {
                log::info!(
                    "policy: dormant table completed ({} commands) and woken in {} ms",
                    tx.commands.len(),
                    t.elapsed().as_millis()
                );
                rep.policy_full = true;
                rep.policy_lines += tx.commands.len();
                self.policy_in_step = true;
                let now = self.tables.generation();
                self.policy_gen = match (before, now) {
                    (Some(b), Some(n)) if n == b.wrapping_add(commits) => Some(n),
                    _ => None,
                };
            }
            Err(e) => {
                rep.nft_failures += 1;
                log::warn!(
                    "policy: the dormant table could not be completed ({e}): loading it whole"
                );
                self.write_policy(&calico_policy::Transaction::default(), true, rep);
            }
        }
    }

    /// The periodic check: the kernel compared with the held state (routes
    /// read back, `inet calico` by its hash, the policy table by the
    /// nftables generation: reloaded whole in one transaction only when
    /// something other than this engine committed since its last write),
    /// without reading the datastore.
    pub fn resync(&mut self) -> Report {
        // What is out of step is loaded whole by the flush itself (at
        // start, after a failure): not a second time here.
        let in_step = (self.routes_in_step, self.nat_in_step, self.policy_in_step);
        let mut rep = self.flush();
        if self.calc.locked() {
            return rep;
        }
        if in_step.0 {
            self.write_routes(&Flush::default(), true, &mut rep);
        }
        if in_step.1 {
            self.write_nat(None, true, &mut rep);
        }
        if in_step.2 && (self.policy_gen.is_none() || self.policy_gen != self.tables.generation()) {
            self.write_policy(&calico_policy::Transaction::default(), true, &mut rep);
        }
        rep.problems = self.problems();
        rep
    }

    fn problems(&self) -> Vec<String> {
        let mut p = self.calc.problems();
        p.extend(self.route_problems.iter().cloned());
        p
    }

    fn write_routes(&mut self, f: &Flush, whole: bool, rep: &mut Report) {
        let desired = self.calc.desired();
        let r = if whole || !self.routes_in_step {
            self.routes.resync(desired)
        } else if f.items.is_empty() && f.workload_routes.is_empty() && !f.full_routes {
            return;
        } else {
            self.routes.apply(f, desired)
        };
        match r {
            Ok(c) => {
                rep.added += c.added;
                rep.removed += c.removed;
                self.route_problems = c.problems;
                if whole || !self.routes_in_step {
                    self.route_recheck = c.recheck_at;
                } else if let Some(t) = c.recheck_at {
                    self.route_recheck = Some(self.route_recheck.map_or(t, |r| r.min(t)));
                }
                self.routes_in_step = true;
            }
            Err(e) => {
                rep.failed.push(format!("dataplane: {e}"));
                self.routes_in_step = false;
            }
        }
    }

    fn write_nat(&mut self, doc: Option<&str>, whole: bool, rep: &mut Report) {
        let doc = match doc {
            Some(d) => d.to_string(),
            None if whole || !self.nat_in_step => self.calc.desired().nft.clone(),
            None => return,
        };
        let before = self.tables.generation();
        let r = self.tables.replace_table(&doc);
        self.note_generation(before, r.is_ok(), false);
        match r {
            Ok(ran) => {
                if ran {
                    rep.nft_runs += 1;
                    log::info!("nftables table {} updated", crate::felix::nat::TABLE);
                }
                self.nat_in_step = true;
            }
            Err(e) => {
                rep.nft_runs += 1;
                rep.nft_failures += 1;
                rep.failed
                    .push(format!("table {}: {e}", crate::felix::nat::TABLE));
                self.nat_in_step = false;
            }
        }
    }

    fn write_policy(&mut self, tx: &calico_policy::Transaction, whole: bool, rep: &mut Report) {
        let before = self.tables.generation();
        let (r, lines, full) = if whole || !self.policy_in_step {
            let t = Instant::now();
            let script = self.calc.policy().full();
            let rendered = t.elapsed();
            let r = self.tables.run(&script);
            log::info!(
                "policy: whole table rendered in {} ms, loaded in {} ms",
                rendered.as_millis(),
                (t.elapsed() - rendered).as_millis()
            );
            (r, script.lines().count(), true)
        } else if tx.is_empty() {
            return;
        } else {
            (self.tables.apply_policy(tx), tx.commands.len(), false)
        };
        self.note_generation(before, r.is_ok(), full);
        rep.nft_runs += 1;
        match r {
            Ok(()) => {
                rep.policy_full |= full;
                rep.policy_lines += lines;
                self.policy_in_step = true;
            }
            Err(e) => {
                rep.nft_failures += 1;
                rep.failed.push(format!("policy: policy table: {e}"));
                // The kernel may hold anything now: load it whole next time.
                self.policy_in_step = false;
            }
        }
    }

    /// After one of our nftables writes (`before`: the generation read just
    /// before it): the policy table is still known exactly when the write
    /// was the only commit since a known state, or it loaded the policy
    /// table whole; anything else (a failure, another writer's commit in
    /// between, an unknown generation) leaves it unknown.
    fn note_generation(&mut self, before: Option<u32>, ok: bool, policy_whole: bool) {
        let after = self.tables.generation();
        self.policy_gen = match (before, after) {
            _ if !ok => None,
            (Some(b), Some(a)) if a == b => {
                if policy_whole {
                    Some(a)
                } else {
                    self.policy_gen.filter(|g| *g == a)
                }
            }
            (Some(b), Some(a)) if a == b.wrapping_add(1) => {
                (policy_whole || self.policy_gen == Some(b)).then_some(a)
            }
            _ => None,
        };
    }

    /// When the routes want reading back before the periodic resync: a
    /// route no endpoint claims was spared for its new interface's grace
    /// period, which ends then.
    pub fn route_recheck(&self) -> Option<Instant> {
        self.route_recheck
    }

    /// Reads the routes back and brings them in line (the end of a grace
    /// period), nothing else.
    pub fn recheck_routes(&mut self) -> Report {
        let mut rep = self.flush();
        if !self.calc.locked() {
            self.write_routes(&Flush::default(), true, &mut rep);
            rep.problems = self.problems();
        }
        rep
    }

    /// Whether the last flush left everything in the kernel.
    pub fn in_step(&self) -> bool {
        self.routes_in_step && self.policy_in_step && self.nat_in_step
    }
}

/// Lists every prefix the engine reads (a page at a time) into `engine`,
/// as differences against what it holds; returns the revision to watch
/// from (the first list's: a change seen again is dropped by the cache).
pub fn relist<R: Routes, T: Tables>(
    client: &Client,
    cache: &mut Cache,
    engine: &mut Engine<R, T>,
) -> Result<Revision, StoreError> {
    let mut first = None;
    let mut r = cache.relist();
    for prefix in cache::LIST_PREFIXES {
        let rev = client.store().list_paged(prefix, &mut |page| {
            for c in r.page(page) {
                engine.apply(c);
            }
        })?;
        first.get_or_insert(rev);
    }
    for c in r.finish() {
        engine.apply(c);
    }
    Ok(first.unwrap_or(0))
}

/// Runs the engine against the datastore and this namespace's kernel
/// until the process ends. `bgp` receives the BGP inputs when they change.
pub fn run(
    client: Client,
    me: String,
    env: std::collections::BTreeMap<String, serde_json::Value>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    bgp_speaker: bool,
    bgp: Option<Sender<BgpView>>,
) {
    crate::felix::enable_forwarding(&env);
    let calc = Calc::new(&me, env, bgp_speaker);
    let mut engine = Engine::new(
        calc,
        writer::NetlinkRoutes::new(),
        writer::Nft::default(),
        bgp,
    );
    let mut cache = Cache::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        // (Re-)list: everything at start, the differences after a lost watch.
        let started = Instant::now();
        let rev = match relist(&client, &mut cache, &mut engine) {
            Ok(rev) => rev,
            Err(e) => {
                Metrics::inc(&metrics.errors);
                log::error!("datastore: {e}");
                health.set_ready(false, format!("datastore: {e}"));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        log::info!(
            "datastore: listed at revision {rev} in {} ms",
            started.elapsed().as_millis()
        );
        Metrics::inc(&metrics.resyncs);
        let rep = engine.resync();
        log::info!(
            "dataplane: in step {} ms after the list began",
            started.elapsed().as_millis()
        );
        let mut seen = rev;
        report(&engine, &rep, &health, &metrics, &cache, started, seen);
        let mut watch = match client.store().watch(cache::WATCH_PREFIX, rev + 1) {
            Ok(w) => w,
            Err(e) => {
                log::error!("datastore watch: {e}");
                std::thread::sleep(backoff);
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut next_resync = Instant::now() + engine.calc().felix().route_refresh();
        let mut retry_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wake = [retry_at, engine.route_recheck()]
                .into_iter()
                .flatten()
                .fold(next_resync, Instant::min);
            let first = match watch.next(wake.saturating_duration_since(now)) {
                Ok(ev) => ev,
                Err(e) => {
                    // Compacted or broken: list again and carry on from there.
                    log::warn!("datastore watch: {e}; listing again");
                    break;
                }
            };
            let started = Instant::now();
            let mut n = 0;
            let mut lost = false;
            let mut ev = first;
            while let Some(e) = ev {
                n += 1;
                Metrics::inc(&metrics.events);
                seen = seen.max(e.mod_revision);
                if let Some(c) = cache.event(e.kind, e.key, e.value, e.mod_revision) {
                    engine.apply(c);
                }
                if n >= MAX_BATCH {
                    break;
                }
                // Whatever is already waiting joins this flush.
                ev = match watch.next(Duration::ZERO) {
                    Ok(ev) => ev,
                    Err(e) => {
                        log::warn!("datastore watch: {e}; listing again");
                        lost = true;
                        None
                    }
                };
            }
            let rep = if Instant::now() >= next_resync {
                next_resync = Instant::now() + engine.calc().felix().route_refresh();
                Metrics::inc(&metrics.resyncs);
                engine.resync()
            } else if engine.route_recheck().is_some_and(|t| Instant::now() >= t) {
                engine.recheck_routes()
            } else if n > 0 || retry_at.is_some_and(|r| Instant::now() >= r) {
                engine.flush()
            } else {
                continue;
            };
            retry_at = (!engine.in_step()).then(|| Instant::now() + backoff);
            if retry_at.is_some() {
                backoff = (backoff * 2).min(Duration::from_secs(10));
            } else {
                backoff = Duration::from_millis(200);
            }
            report(&engine, &rep, &health, &metrics, &cache, started, seen);
            if lost {
                break;
            }
        }
    }
}

fn report<R: Routes, T: Tables>(
    engine: &Engine<R, T>,
    rep: &Report,
    health: &Health,
    metrics: &Metrics,
    cache: &Cache,
    started: Instant,
    seen: Revision,
) {
    let calc = engine.calc();
    metrics.observe_apply(started.elapsed());
    let (nodes, weps, local) = calc.counts();
    metrics.set_counts(nodes, weps, local);
    let (tiers, policies, profiles, heps) = calc.policy().counts();
    metrics.set_policy_counts(tiers, policies, profiles, heps);
    let (routes, neighbours) = calc.route_counts();
    metrics
        .routes
        .set(i64::try_from(routes).unwrap_or(i64::MAX));
    metrics
        .neighbours
        .set(i64::try_from(neighbours).unwrap_or(i64::MAX));
    metrics
        .datastore_bytes
        .set(i64::try_from(cache.bytes_read).unwrap_or(i64::MAX));
    for _ in 0..rep.nft_runs - rep.nft_failures {
        metrics.nft_call(false);
    }
    for _ in 0..rep.nft_failures {
        metrics.nft_call(true);
    }
    if rep.policy_lines > 0 {
        Metrics::inc(&metrics.policy_updates);
        log::info!(
            "policy: {} ({} lines)",
            if rep.policy_full {
                "table loaded"
            } else {
                "table updated"
            },
            rep.policy_lines
        );
    }
    if rep.added + rep.removed > 0 {
        log::info!("dataplane: {} added, {} removed", rep.added, rep.removed);
    }
    if calc.locked() {
        health.set_ready(
            true,
            format!(
                "{} (seen revision {seen})",
                crate::felix::datastore_lock::WAITING
            ),
        );
        return;
    }
    if !rep.failed.is_empty() {
        Metrics::inc(&metrics.errors);
        let e = rep.failed.join("; ");
        log::error!("{e}");
        health.set_ready(false, e);
        return;
    }
    let detail = if rep.problems.is_empty() {
        "in sync".to_string()
    } else {
        format!("in sync; {}", rep.problems.join("; "))
    };
    health.set_ready(true, detail);
}
