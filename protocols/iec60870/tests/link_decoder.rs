//! The FT1.2 stream decoder: arbitrary chunks, garbage, bad frames, counters.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use iec60870::link::{
    encode_to_bytes, AddressSize, Decoder, Frame, LinkFormat, ReqFrame, ReqFunction, ResFrame,
    ResFunction,
};

const ONE: LinkFormat = LinkFormat {
    address_size: AddressSize::One,
    direction_valid: false,
};

fn frames() -> Vec<Frame> {
    vec![
        Frame::Short,
        Frame::Req(ReqFrame {
            direction: None,
            frame_count_bit: true,
            frame_count_valid: true,
            function: ReqFunction::ReqData1,
            address: 1,
            data: Bytes::new(),
        }),
        Frame::Res(ResFrame {
            direction: None,
            access_demand: true,
            data_flow_control: false,
            function: ResFunction::ResData,
            address: 1,
            data: Bytes::from((0..=252u8).collect::<Vec<_>>()),
        }),
        Frame::Short,
        Frame::Res(ResFrame {
            direction: None,
            access_demand: false,
            data_flow_control: false,
            function: ResFunction::ResData,
            address: 2,
            // Start characters inside the data are data.
            data: Bytes::from_static(&[0x68, 0x10, 0xE5, 0x16]),
        }),
    ]
}

fn stream(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| encode_to_bytes(&ONE, f).unwrap())
        .collect()
}

fn decode_all(decoder: &mut Decoder) -> Vec<Frame> {
    std::iter::from_fn(|| decoder.next_frame()).collect()
}

#[test]
fn any_chunking_gives_the_same_frames() {
    let frames = frames();
    let octets = stream(&frames);
    for chunk in [1, 2, 3, 5, 7, 64, 1000] {
        let mut decoder = Decoder::new(ONE);
        let mut got = Vec::new();
        for part in octets.chunks(chunk) {
            decoder.push(part);
            got.extend(decode_all(&mut decoder));
        }
        assert_eq!(got, frames, "chunk {chunk}");
        assert_eq!(decoder.pending(), 0);
        let stats = decoder.stats();
        assert_eq!(
            (stats.frames, stats.bad_frames, stats.discarded_bytes),
            (5, 0, 0)
        );
    }
}

#[test]
fn garbage_is_skipped_up_to_the_next_start_character() {
    let mut decoder = Decoder::new(ONE);
    let mut octets = vec![0x00, 0x01, 0xFF, 0x16];
    octets.extend(stream(&frames()[1..2]));
    decoder.push(&octets);
    assert_eq!(decode_all(&mut decoder), frames()[1..2].to_vec());
    let stats = decoder.stats();
    assert_eq!(
        (stats.frames, stats.bad_frames, stats.discarded_bytes),
        (1, 0, 4)
    );
}

#[test]
fn a_bad_checksum_or_stop_character_drops_the_whole_frame() {
    let mut decoder = Decoder::new(ONE);
    // Bad checksum, bad stop character, a bad variable frame, then a good one.
    decoder.push(&[0x10, 0x40, 0x01, 0x00, 0x16]);
    decoder.push(&[0x10, 0x40, 0x01, 0x41, 0x00]);
    decoder.push(&[0x68, 0x03, 0x03, 0x68, 0x08, 0x01, 0xE5, 0x00, 0x16]);
    decoder.push(&[0xE5]);
    assert_eq!(decode_all(&mut decoder), vec![Frame::Short]);
    let stats = decoder.stats();
    assert_eq!(
        (stats.frames, stats.bad_frames, stats.discarded_bytes),
        (1, 3, 19)
    );
    assert!(decoder.take_dropped().is_some());
    assert!(decoder.take_dropped().is_none());
}

#[test]
fn an_inconsistent_variable_header_skips_only_its_start() {
    let mut decoder = Decoder::new(ONE);
    // Lengths differ: the 0x68 is dropped and the scan resumes at the fixed frame that
    // follows immediately.
    let mut octets = vec![0x68, 0x05, 0x06];
    octets.extend(stream(&frames()[1..2]));
    decoder.push(&octets);
    assert_eq!(decode_all(&mut decoder), frames()[1..2].to_vec());
    let stats = decoder.stats();
    assert_eq!(
        (stats.frames, stats.bad_frames, stats.discarded_bytes),
        (1, 1, 3)
    );
}

#[test]
fn a_reserved_function_code_is_a_bad_frame() {
    let mut decoder = Decoder::new(ONE);
    decoder.push(&[0x10, 0x45, 0x01, 0x46, 0x16, 0xE5]);
    assert_eq!(decode_all(&mut decoder), vec![Frame::Short]);
    assert_eq!(decoder.stats().bad_frames, 1);
}

#[test]
fn an_incomplete_frame_waits_for_the_rest() {
    let mut decoder = Decoder::new(ONE);
    let octets = stream(&frames()[2..3]);
    decoder.push(&octets[..100]);
    assert!(decoder.next_frame().is_none());
    assert_eq!(decoder.pending(), 100);
    decoder.push(&octets[100..]);
    assert_eq!(decode_all(&mut decoder), frames()[2..3].to_vec());
    decoder.push(&[0x10, 0x40]);
    decoder.clear();
    assert_eq!(decoder.pending(), 0);
}

#[test]
fn a_long_run_of_garbage_is_dropped_in_one_pass() {
    let mut decoder = Decoder::new(ONE);
    let garbage = vec![0x42u8; 100_000];
    decoder.push(&garbage);
    assert!(decoder.next_frame().is_none());
    assert_eq!(decoder.pending(), 0);
    assert_eq!(decoder.stats().discarded_bytes, 100_000);
}
