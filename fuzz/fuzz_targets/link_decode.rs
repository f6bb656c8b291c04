//! Feeds arbitrary bytes, as a serial line, through the FT1.2 stream decoder
//! (`iec60870::link::Decoder`, in chunks of 1 to 16 bytes) and every decoded frame
//! through the link stations. The first byte picks the frame format (address size 0, 1
//! or 2; DIR used or not) and the chunk size; the rest is the line.
//!
//! Nothing may panic, and:
//! - decoding in chunks yields the same frames and counters as decoding all at once;
//! - every octet pushed is accounted for (in a frame, discarded, or pending);
//! - every frame re-encodes and decodes back to itself;
//! - the master, slave and balanced stations take every frame and timer without panic.

#![no_main]

use std::time::{Duration, Instant};

use iec60870::link::{
    decode, encode_to_bytes, AddressSize, BalancedStation, ConnConfig, Decoder, DecoderStats,
    Direction, Frame, LinkFormat, MasterStation, PrimaryConfig, SecondaryConfig, SlaveStation,
    Station,
};
use libfuzzer_sys::fuzz_target;

fn run(format: LinkFormat, data: &[u8], chunk: usize) -> (Vec<Frame>, DecoderStats, usize) {
    let mut decoder = Decoder::new(format);
    let mut frames = Vec::new();
    for part in data.chunks(chunk) {
        decoder.push(part);
        while let Some(frame) = decoder.next_frame() {
            frames.push(frame);
        }
    }
    (frames, decoder.stats(), decoder.pending())
}

fn primary(address: u16, direction: Option<Direction>) -> PrimaryConfig {
    PrimaryConfig {
        address,
        direction,
        response_timeout: Duration::from_millis(10),
        send_retry_count: 1,
        poll_class1_delay: Some(Duration::ZERO),
        poll_class2_delay: Some(Duration::from_millis(1)),
        status_delay: direction.map(|_| Duration::from_millis(5)),
    }
}

fn secondary(address: u16, direction: Option<Direction>) -> SecondaryConfig {
    SecondaryConfig {
        address,
        direction,
        balanced: direction.is_some(),
        keep_alive_timeout: Some(Duration::from_millis(20)),
    }
}

fn drive(station: &mut impl Station, frames: &[Frame], start: Instant) {
    for (i, frame) in frames.iter().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        station.on_frame(frame.clone(), now);
        station.on_timer(now);
        while station.poll_output().is_some() {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    let address_size = match selector % 3 {
        0 => AddressSize::Zero,
        1 => AddressSize::One,
        _ => AddressSize::Two,
    };
    let format = LinkFormat {
        address_size,
        direction_valid: selector & 0x04 != 0,
    };
    let chunk = 1 + usize::from(selector >> 4);

    let (whole, whole_stats, whole_pending) = run(format, line, line.len().max(1));
    let (chunked, chunked_stats, chunked_pending) = run(format, line, chunk);
    assert_eq!(whole, chunked);
    assert_eq!(whole_stats, chunked_stats);
    assert_eq!(whole_pending, chunked_pending);
    assert_eq!(whole_stats.frames, whole.len() as u64);
    assert!(whole_stats.discarded_bytes + whole_pending as u64 <= line.len() as u64);

    for frame in &whole {
        let octets = encode_to_bytes(&format, frame).expect("a decoded frame re-encodes");
        assert_eq!(&decode(&format, &octets).expect("re-encoded frame decodes"), frame);
    }

    let start = Instant::now();
    if address_size != AddressSize::Zero {
        let mut master = MasterStation::new(format);
        let _ = master.add(ConnConfig::Master(primary(1, None)), start);
        let _ = master.add(ConnConfig::Master(primary(2, None)), start);
        drive(&mut master, &whole, start);
        let mut slave = SlaveStation::new(format);
        let _ = slave.add(ConnConfig::Slave(secondary(1, None)), start);
        drive(&mut slave, &whole, start);
    }
    let mut balanced = BalancedStation::new(format);
    let dir = Some(Direction::AToB);
    let _ = balanced.add(ConnConfig::Balanced(primary(0, dir), secondary(0, dir)), start);
    let _ = balanced.add(ConnConfig::Balanced(primary(1, dir), secondary(1, dir)), start);
    drive(&mut balanced, &whole, start);
});
