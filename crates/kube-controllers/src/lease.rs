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

/// Seconds since the epoch of an RFC 3339 UTC time
/// (`2026-12-04T02:48:41Z`, fractional seconds allowed); `None` when it is not one.
pub fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// The Lease object (`coordination.k8s.io/v1`) for `l`, named `ns/name`.
pub fn to_json(ns: &str, name: &str, l: &Lease) -> serde_json::Value {
    let mut md = serde_json::json!({"name": name, "namespace": ns});
    if !l.resource_version.is_empty() {
        md["resourceVersion"] = serde_json::json!(l.resource_version);
    }
    let renew = calico_datastore::time::rfc3339(l.renew_time).replace('Z', ".000000Z");
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
        "spec": {"holderIdentity": l.holder, "leaseDurationSeconds": l.duration,
                 "renewTime": renew, "leaseTransitions": l.transitions}
    })
}

/// The election's fields of a Lease object.
pub fn from_json(v: &serde_json::Value) -> Lease {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str());
    let u = |p: &str| v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
    Lease {
        holder: s("/spec/holderIdentity").map(str::to_string),
        renew_time: s("/spec/renewTime").and_then(parse_rfc3339).unwrap_or(0),
        duration: u("/spec/leaseDurationSeconds"),
        transitions: u("/spec/leaseTransitions"),
        resource_version: s("/metadata/resourceVersion").unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn lease_json_round_trip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-12-04T02:48:41.123456Z"),
            Some(1_796_352_521)
        );
        assert_eq!(parse_rfc3339("2026-13-04T02:48:41Z"), None);
        for t in [0u64, 951_782_400, 1_796_352_521, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&calico_datastore::time::rfc3339(t)), Some(t));
        }
        let l = Lease {
            holder: Some("a".into()),
            renew_time: 1_796_352_521,
            duration: 15,
            transitions: 2,
            resource_version: "9".into(),
        };
        assert_eq!(from_json(&to_json("kube-system", "calico", &l)), l);
    }

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
