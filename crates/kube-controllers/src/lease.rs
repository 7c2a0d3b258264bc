//! Leader election over a `coordination.k8s.io/v1` Lease, decided without
//! I/O: given the Lease as read (or none), this replica's identity and the
//! time, what to write. The write itself is a compare-and-swap on the read
//! resourceVersion (create when absent, update otherwise), so of two
//! replicas deciding at once only one write succeeds (the other gets 409
//! Conflict and reads again).
//!
//! Invariants:
//! - a replica writes to the Calico store only while it holds an unexpired
//!   lease it renewed itself;
//! - a lease held by another replica is taken over only after
//!   `leaseDurationSeconds` have passed since its `renewTime`.

use std::time::Duration;

/// The fields of a Lease the election uses (times in seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: u64,
    /// `spec.leaseDurationSeconds`.
    pub duration: u64,
    /// `spec.leaseTransitions`.
    pub transitions: u64,
    /// `metadata.resourceVersion` as read.
    pub resource_version: String,
}

/// What the replica does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this Lease (create when the read found none, else update with
    /// the read resourceVersion); lead once the write succeeds.
    Write(Lease),
    /// Another replica leads: do not write; read again later.
    Follow {
        /// The leader.
        holder: String,
    },
}

/// The decision of replica `me` at `now` (seconds since the epoch) for a
/// lease of `duration`.
pub fn decide(me: &str, read: Option<&Lease>, now: u64, duration: Duration) -> Decision {
    let secs = duration.as_secs().max(1);
    let mine = |transitions: u64, rv: &str| {
        Decision::Write(Lease {
            holder: Some(me.to_string()),
            renew_time: now,
            duration: secs,
            transitions,
            resource_version: rv.to_string(),
        })
    };
    let Some(l) = read else {
        return mine(0, "");
    };
    match &l.holder {
        Some(h) if h == me => mine(l.transitions, &l.resource_version),
        Some(h) if now < l.renew_time.saturating_add(l.duration) => {
            Decision::Follow { holder: h.clone() }
        }
        _ => mine(l.transitions + 1, &l.resource_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn acquire_renew_follow_take_over() {
        let Decision::Write(a) = decide("a", None, 100, D) else {
            panic!("no acquire")
        };
        assert_eq!(a.holder.as_deref(), Some("a"));
        let read = Lease {
            resource_version: "5".into(),
            ..a
        };
        assert_eq!(
            decide("b", Some(&read), 110, D),
            Decision::Follow { holder: "a".into() }
        );
        let Decision::Write(r) = decide("a", Some(&read), 110, D) else {
            panic!("no renew")
        };
        assert_eq!(
            (r.renew_time, r.transitions, r.resource_version.as_str()),
            (110, 0, "5")
        );
        let Decision::Write(t) = decide("b", Some(&read), 115, D) else {
            panic!("no take-over")
        };
        assert_eq!((t.holder.as_deref(), t.transitions), (Some("b"), 1));
    }

    /// Two replicas, a shared lease with CAS on resourceVersion, ticking in
    /// any order: at no time do both hold an unexpired lease.
    #[test]
    fn two_replicas_never_both_lead() {
        let mut stored: Option<Lease> = None;
        let mut rv = 0u64;
        let mut leader_at: Vec<(u64, &str)> = Vec::new();
        for now in 0..200u64 {
            let order: [&str; 2] = if now % 3 == 0 { ["b", "a"] } else { ["a", "b"] };
            for me in order {
                // The first leader "b" pauses between 50 and 90 (e.g. a GC
                // pause): no renewals, so "a" takes over once it expired.
                if me == "b" && (50..90).contains(&now) {
                    continue;
                }
                let read = stored.clone();
                if let Decision::Write(mut l) = decide(me, read.as_ref(), now, D) {
                    let current = stored
                        .as_ref()
                        .map(|s| s.resource_version.clone())
                        .unwrap_or_default();
                    if l.resource_version == current {
                        rv += 1;
                        l.resource_version = rv.to_string();
                        stored = Some(l);
                        leader_at.push((now, me));
                    }
                }
            }
        }
        // Between consecutive successful writes by different replicas, the
        // earlier lease had expired.
        for w in leader_at.windows(2) {
            if w[0].1 != w[1].1 {
                assert!(w[1].0 >= w[0].0 + D.as_secs(), "{w:?}");
            }
        }
        assert!(leader_at.iter().any(|(_, m)| *m == "a"));
        assert!(leader_at.iter().any(|(_, m)| *m == "b"), "no take-over");
    }
}
