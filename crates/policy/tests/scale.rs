//! Ruleset size grows with policies + endpoints, not their product.
//!
//! See [`common::scale_input`]: every endpoint is governed by N/10
//! policies; a per-endpoint rendering would need N×M/10 jumps, the shared
//! chains need N.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use calico_policy::Model;
use calico_policy::nft::compile::compile;
use common::scale_input;

/// (lines, bytes) of the whole table.
fn size(policies: usize, endpoints: usize) -> (usize, usize) {
    let start = Instant::now();
    let text = compile(&Model::build(&scale_input(policies, endpoints))).full();
    eprintln!(
        "{policies} policies × {endpoints} endpoints: {} lines, {} bytes, compiled in {:?}",
        text.lines().count(),
        text.len(),
        start.elapsed()
    );
    (text.lines().count(), text.len())
}

#[test]
fn ruleset_grows_with_policies_plus_endpoints() {
    let (l1, b1) = size(100, 100);
    let (l2, b2) = size(200, 200);
    let (l3, b3) = size(400, 400);
    for (small, big) in [(l1, l2), (l2, l3), (b1, b2), (b2, b3)] {
        let ratio = big as f64 / small as f64;
        // Doubling both doubles a sum; a product would quadruple.
        assert!(
            ratio < 2.2,
            "doubling policies and endpoints grew the ruleset {ratio:.2}×"
        );
    }
}

#[test]
fn endpoints_alone_add_a_constant_amount_each() {
    let (l1, _) = size(100, 200);
    let (l2, _) = size(100, 400);
    let (l3, _) = size(100, 600);
    assert_eq!(
        l2 - l1,
        l3 - l2,
        "each endpoint adds the same number of lines"
    );
    // Two map entries per endpoint: the new endpoints are in no rule's
    // selector here, and share their group's chains.
    assert_eq!((l2 - l1) / 200, 2);
}
