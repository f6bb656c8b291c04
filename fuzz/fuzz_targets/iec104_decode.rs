//! Feeds arbitrary bytes, as an IEC 104 peer's byte stream, through the APCI stream
//! decoder (`iec60870::apci::ApduDecoder`, in chunks of 1 to 16 bytes picked by the
//! first byte) and every I-frame's ASDU through the 104 ASDU codec; and the input
//! itself as one ASDU through the 104 codec and the 101 codec of the field sizes the
//! first byte picks.
//!
//! Nothing may panic, and:
//! - decoding the stream in chunks yields the same APDUs and the same error as decoding
//!   it all at once;
//! - every ASDU that decodes re-encodes (packed, as the codec sends bursts) into ASDUs
//!   no larger than the codec's largest, and those decode back to the same messages.

#![no_main]

use bytes::BytesMut;
use iec60870::apci::{ApciError, Apdu, ApduDecoder};
use iec60870::asdu::{AsduAddressSize, AsduCodec, CauseSize, FieldSizes, IoAddressSize, Profile};
use libfuzzer_sys::fuzz_target;

/// APDUs plus the final error, if any.
type Outcome = (Vec<Apdu>, Option<ApciError>);

fn drain(
    buf: &mut BytesMut,
    decoder: &mut ApduDecoder,
    apdus: &mut Vec<Apdu>,
) -> Option<ApciError> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(apdu)) => apdus.push(apdu),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fn stream(data: &[u8], chunk: usize) -> Outcome {
    let mut decoder = ApduDecoder::new();
    let mut buf = BytesMut::new();
    let mut apdus = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        if let Some(e) = drain(&mut buf, &mut decoder, &mut apdus) {
            return (apdus, Some(e));
        }
    }
    (apdus, None)
}

/// Decodes `asdu`; if it decodes, checks the re-encoding invariant.
fn check_asdu(codec: &AsduCodec, asdu: &[u8]) {
    let Ok(msgs) = codec.decode(asdu) else {
        return;
    };
    let packed = codec
        .encode(&msgs)
        .expect("every decoded message re-encodes");
    let mut again = Vec::with_capacity(msgs.len());
    for bytes in &packed {
        assert!(bytes.len() <= codec.max_asdu_size());
        again.extend(codec.decode(bytes).expect("our own ASDU decodes"));
    }
    // Debug text, so NaN floats compare equal.
    assert_eq!(format!("{again:?}"), format!("{msgs:?}"));
}

fn iec101(selector: u8) -> AsduCodec {
    AsduCodec::new(Profile::iec101(FieldSizes {
        cause: if selector & 1 == 0 {
            CauseSize::One
        } else {
            CauseSize::Two
        },
        asdu_address: if selector & 2 == 0 {
            AsduAddressSize::One
        } else {
            AsduAddressSize::Two
        },
        io_address: match (selector >> 2) % 3 {
            0 => IoAddressSize::One,
            1 => IoAddressSize::Two,
            _ => IoAddressSize::Three,
        },
    }))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let iec104 = AsduCodec::new(Profile::iec104());

    let chunk = usize::from(selector % 16) + 1;
    let whole = stream(rest, rest.len().max(1));
    let chunked = stream(rest, chunk);
    assert_eq!(whole, chunked, "chunk size {chunk}");
    for apdu in &whole.0 {
        if let Apdu::I { asdu, .. } = apdu {
            check_asdu(&iec104, asdu);
        }
    }

    check_asdu(&iec104, rest);
    check_asdu(&iec101(selector >> 4), rest);
});
