//! Golden tests: policy sets in (`tests/golden/<case>.yaml`), the whole
//! nftables table out (`tests/golden/<case>.nft`, problems as `#` comments
//! at the top). Regenerate with `UPDATE_GOLDEN=1 cargo test -p calico-policy --test golden`
//! and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use calico_policy::Model;
use calico_policy::nft::compile::compile;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The expected text for one case.
pub fn render(yaml: &str) -> String {
    let model = Model::build(&common::input(yaml));
    let mut out: String = model
        .problems
        .iter()
        .map(|p| format!("# problem: {p}\n"))
        .collect();
    out.push_str(&compile(&model).full());
    out
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn golden_rulesets() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let got = render(&std::fs::read_to_string(&case).unwrap());
        let expected_path = case.with_extension("nft");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{} differs from {} (UPDATE_GOLDEN=1 to regenerate):\n{got}",
                case.display(),
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(cases().len() >= 2);
}

#[test]
fn golden_cases_report_their_problems() {
    let text = std::fs::read_to_string(golden_dir().join("tiers-and-hosts.yaml")).unwrap();
    let out = render(&text);
    assert!(
        out.starts_with("# problem: GlobalNetworkPolicy(broken): spec.ingress[0].source.selector: invalid selector"),
        "{out}"
    );
    // The broken policy is left out; the others are there.
    assert!(!out.contains("GlobalNetworkPolicy(broken) ingress"));
    assert!(out.contains("GlobalNetworkPolicy(node-ingress) ingress"));
}
