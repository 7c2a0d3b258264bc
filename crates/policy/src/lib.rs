//! Calico network policy for calico-rs: the model, an oracle, and a
//! compiler to one nftables table. Pure: no I/O, no processes; calico-node
//! feeds it resources and hands the text it returns to `nft -f`.
//!
//! # Pipeline
//!
//! ```text
//!  PolicyInput ──Model::build──▶ Model ──compile──▶ Ruleset ──full()──────▶ nft -f (whole table)
//!  (resources,    (conversions,     │                  │
//!   endpoints,     labels, order,   │                  └─diff(old, new)──▶ nft -f (one transaction)
//!   settings)      problems)        └──oracle::evaluate(packet)──▶ Verdict (for tests)
//! ```
//!
//! - [`input`]: what enforcement is computed from, [`settings`]: Felix's knobs.
//! - [`k8s`]: Kubernetes NetworkPolicy → Calico NetworkPolicy, as libcalico-go.
//! - [`model`]: labels, effective selectors, inferred types, sorted tiers and
//!   policies, as libcalico-go and Felix compute them.
//! - [`oracle`]: decides one packet straight from the model.
//! - [`nft`]: the table, its compiler, its diff and a reference interpreter.
//!
//! # The table `inet calico-policy`
//!
//! ```text
//! forward (hook)   ct established,related accept · ct invalid drop · clear marks
//!                  iifname "cali*" jump from-wl ── iifname vmap @wl-from ─▶ fw-<h>
//!                  oifname "cali*" jump to-wl   ── oifname vmap @wl-to   ─▶ tw-<h>
//! input (hook)     ct … · iifname "cali*" goto wl-to-host (ND accept, jump from-wl,
//!                  defaultEndpointToHostAction) · VXLAN/IP-in-IP from a cluster host
//!                  accept · iifname vmap @hep-from ─▶ fh-<h>
//! output (hook)    ct … · oifname "cali*" accept (host → own workloads is not policed)
//!                  · VXLAN/IP-in-IP to a cluster host accept · oifname vmap @hep-to ─▶ th-<h>
//!
//! endpoint chain   [fh: jump failsafe-in | th: jump failsafe-out | fw: drop VXLAN, IP-in-IP]
//! (tw/fw/fh/th)    per tier:   clear PASS
//!                              PASS clear? jump pi-<policy> · ACCEPT set? return   (each policy)
//!                              PASS clear? drop                  (default action Deny)
//!                  per profile: jump pri-<profile> · ACCEPT set? return
//!                  drop
//! policy chain     Allow: set ACCEPT, return · Pass: set PASS, return · Deny: drop
//! (pi/po/pri/pro)  Log: log prefix "calico-packet: " and go on
//! ```
//!
//! Dispatch to an endpoint's chains is one verdict-map lookup by interface
//! name; selector, net and named-port matches are lookups in named interval
//! sets, so a packet's cost does not grow with the number of endpoints or
//! set members. Endpoints whose ordered tiers, policies and profiles are the
//! same share one chain, so the ruleset grows with policies + endpoints, not
//! their product.
//!
//! ## Mark bits
//!
//! Two bits of the packet mark carry verdicts back to the calling chain, as
//! Felix's `IptablesMarkAccept`/`IptablesMarkPass` (by default `0x10000` and
//! `0x20000`, the two lowest bits of `iptablesMarkMask`): a policy that
//! allows sets ACCEPT and returns, so the endpoint chain returns and the
//! packet continues to the next check in the same hook (a forwarded packet
//! between two local workloads runs the sender's egress chain, then the
//! receiver's ingress chain, which first clears ACCEPT); a policy that passes
//! sets PASS, which skips the rest of the tier. The base chains clear both
//! bits first. A packet that reaches the end of a base chain is accepted
//! (policy accept), since every endpoint chain ends in a drop.
//!
//! ## Names and incremental updates
//!
//! Chains and sets are named by a 64-bit hash (see [`nft::compile`]): policy
//! and profile chains after what they belong to, endpoint chains after
//! their content, sets after their definition (selector, nets, named
//! ports). So compiling the same input twice gives the same [`nft::Ruleset`],
//! and [`nft::diff::diff`] between two compilations is small: a new pod is
//! map entries plus set elements; a changed policy is one chain flushed and
//! refilled; nothing else moves. [`Engine`] keeps the last state for callers.
//!
//! ## Not enforced (yet)
//!
//! Reported as problems and left out: untracked and pre-DNAT policies,
//! HTTP and Kubernetes-service rule matches, host endpoints without a named
//! interface (`*`, or `expectedIPs` only). Not modelled: traffic forwarded
//! through host endpoints (`applyOnForward` policies only govern traffic to
//! and from the host here), IPVS, flow logs.
//!
//! ## Problems
//!
//! Nothing in the input makes this crate panic or fail as a whole: an
//! unparsable selector, bad CIDR, unknown protocol or unsupported feature
//! puts a [`Problem`] naming the resource and field in the result, and only
//! that resource is left out.

pub mod incremental;
pub mod input;
pub mod k8s;
pub mod model;
pub mod nft;
pub mod oracle;
pub mod settings;

pub use input::{PolicyInput, Problem, Tier};
pub use model::Model;
pub use nft::Ruleset;
pub use nft::diff::{Transaction, diff};
pub use oracle::{Packet, Peer, Verdict, evaluate};
pub use settings::Settings;

/// The compiled state of one node, kept between updates.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    current: Option<Ruleset>,
}

/// What to hand to `nft -f` after an input change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The nft text: the whole table the first time, a transaction after.
    /// Empty when nothing changed.
    pub script: String,
    /// What could not be enforced.
    pub problems: Vec<Problem>,
}

impl Engine {
    /// No state yet: the first update writes the whole table.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Compiles `input` and returns what turns the previous state into it.
    /// Call [`Engine::forget`] when applying failed, so the next update
    /// rewrites the whole table.
    pub fn update(&mut self, input: &PolicyInput) -> Update {
        let model = Model::build(input);
        let new = nft::compile::compile(&model);
        let script = match &self.current {
            None => new.full(),
            Some(old) => diff(old, &new).to_string(),
        };
        self.current = Some(new);
        Update {
            script,
            problems: model.problems,
        }
    }

    /// Drops the remembered state (after a failed apply, or a restart).
    pub fn forget(&mut self) {
        self.current = None;
    }

    /// The state the last update produced.
    pub fn current(&self) -> Option<&Ruleset> {
        self.current.as_ref()
    }
}
