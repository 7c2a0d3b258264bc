//! BGP message decoding never panics, on any input, for either AS number
//! width; and what decodes (unless RFC 7606 treated it as withdrawn, or it
//! is an empty UPDATE) encodes back to the same message, unknown path
//! attributes gaining the partial bit.
#![no_main]

use calico_bgp::msg::Message;
use calico_bgp::wire::{Context, EncodeError, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for asn4 in [false, true] {
        let ctx = Context { asn4 };
        let Ok(Some((msg, n))) = decode(data, &ctx) else {
            continue;
        };
        assert!((19..=data.len()).contains(&n));
        let mut expected = msg.clone();
        if let Message::Update(u) = &mut expected {
            let empty = u.withdrawn.is_empty() && u.announced.is_empty() && u.end_of_rib.is_none();
            if u.treated_as_withdraw.is_some() || empty {
                continue;
            }
            u.attributes.other.iter_mut().for_each(|o| o.0 |= 0x20);
        }
        match encode(&msg, &ctx) {
            Ok(bytes) => {
                let again = decode(&bytes, &ctx).ok().flatten().map(|(m, _)| m);
                assert_eq!(again.as_ref(), Some(&expected), "{bytes:02x?}");
            }
            Err(EncodeError::TooLong(_)) => {}
            // More capabilities than one optional parameter holds.
            Err(EncodeError::Invalid(_)) if matches!(msg, Message::Open(_)) => {}
            Err(e) => panic!("{e}: {msg:?}"),
        }
    }
});
