//! Feeds arbitrary bytes through the IEC 103 ASDU decoder (`iec60870::iec103`).
//!
//! Nothing may panic, and:
//! - `decode` succeeds exactly when `decode_with_rest` succeeds with no rest;
//! - an ASDU that decodes and re-encodes decodes back to the same ASDU (except the low
//!   bits of (U)Fixed values wider than 2 octets, see below), which encodes to the same
//!   octets again.

#![no_main]

use iec60870::iec103;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = iec103::decode(data);
    let with_rest = iec103::decode_with_rest(data);
    match (&whole, &with_rest) {
        (Ok(a), Ok((b, rest))) => {
            assert!(rest.is_empty(), "decode accepted trailing octets");
            // Debug text, not `==`: a decoded float may be NaN.
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        (Ok(_), Err(e)) => panic!("decode_with_rest failed where decode did not: {e}"),
        (Err(_), _) => {}
    }
    if let Ok((asdu, _)) = with_rest {
        if let Ok(bytes) = iec103::encode(&asdu) {
            let again = iec103::decode(&bytes).expect("an encoded ASDU decodes");
            // A generic (U)Fixed value may arrive in up to 8 octets, but the model keeps
            // no element width (hat's neither) and the encoder writes (U)Fixed in its
            // minimum size, 2 octets, as hat's does: its low bits are lost on the first
            // round trip, inherently. Every other ASDU comes back unchanged.
            let text = format!("{asdu:?}");
            if !text.contains("Fixed(") {
                assert_eq!(format!("{again:?}"), text);
            }
            // Once encoded, the round trip is exact: what we write we read back.
            let bytes_again = iec103::encode(&again).expect("a decoded ASDU re-encodes");
            assert_eq!(bytes_again, bytes);
            let third = iec103::decode(&bytes_again).expect("an encoded ASDU decodes");
            assert_eq!(format!("{third:?}"), format!("{again:?}"));
        }
    }
});
