//! The IPAM service's request decoding (`calico_ipam::service::decode_envelope`,
//! what calico-node runs on every line its socket reads) never panics on
//! any input; what decodes keeps the limits (a line of at most
//! `MAX_REQUEST` bytes, at most `MAX_ADDRESSES` per family) and encodes
//! back to a line that decodes to the same request.
#![no_main]

use calico_ipam::service::{MAX_ADDRESSES, MAX_REQUEST, Request, decode_envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = decode_envelope(data) else {
        return;
    };
    assert!(data.len() <= MAX_REQUEST);
    if let Request::Assign {
        num_v4,
        num_v6,
        specific,
        ..
    } = &env.request
    {
        assert!(*num_v4 <= MAX_ADDRESSES && *num_v6 <= MAX_ADDRESSES);
        assert!(specific.as_ref().is_none_or(|s| s.len() <= MAX_ADDRESSES));
    }
    let line = serde_json::to_vec(&env).unwrap_or_default();
    // Re-encoding may lengthen a line (escapes, defaults written out).
    if line.len() <= MAX_REQUEST {
        let again = decode_envelope(&line).ok();
        assert_eq!(
            again.as_ref(),
            Some(&env),
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
});
