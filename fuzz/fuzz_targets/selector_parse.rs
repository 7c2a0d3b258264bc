//! The selector parser never panics, and what it accepts prints back to an
//! equal selector.
#![no_main]

use calico_api::selector::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = Selector::parse(text) {
        let printed = sel.to_string();
        let again = Selector::parse(&printed);
        assert_eq!(again.as_ref().ok(), Some(&sel), "{text:?} printed as {printed:?}");
        let _ = sel.matches(&Default::default());
    }
});
