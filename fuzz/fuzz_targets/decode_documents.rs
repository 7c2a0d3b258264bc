//! YAML/JSON text → resources → defaults → validation → YAML → resources:
//! nothing may panic, and every valid resource must survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(docs) = calico_api::decode_documents(text) else { return };
    for mut r in docs.into_iter().flatten() {
        r.set_defaults();
        if r.validate().is_err() {
            continue;
        }
        let yaml = calico_api::encode_yaml(&r.to_json());
        let back = calico_api::decode_documents(&yaml).ok().and_then(|mut d| d.pop()).and_then(Result::ok);
        assert_eq!(back.as_ref(), Some(&r), "round trip changed the resource:\n{yaml}");
    }
});
