//! FT1.2 frame layouts (IEC 60870-5-1/-2): every frame kind, octet by octet.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use iec60870::link::{
    decode, encode_to_bytes, frame_len, AddressSize, Direction, EncodeError, Frame, FrameError,
    LinkFormat, ReqFrame, ReqFunction, ResFrame, ResFunction,
};

const ONE: LinkFormat = LinkFormat {
    address_size: AddressSize::One,
    direction_valid: false,
};
const TWO: LinkFormat = LinkFormat {
    address_size: AddressSize::Two,
    direction_valid: false,
};
const BALANCED_ZERO: LinkFormat = LinkFormat {
    address_size: AddressSize::Zero,
    direction_valid: true,
};

fn req(function: ReqFunction, fcb: bool, fcv: bool, address: u16, data: &[u8]) -> Frame {
    Frame::Req(ReqFrame {
        direction: None,
        frame_count_bit: fcb,
        frame_count_valid: fcv,
        function,
        address,
        data: Bytes::copy_from_slice(data),
    })
}

fn res(function: ResFunction, acd: bool, dfc: bool, address: u16, data: &[u8]) -> Frame {
    Frame::Res(ResFrame {
        direction: None,
        access_demand: acd,
        data_flow_control: dfc,
        function,
        address,
        data: Bytes::copy_from_slice(data),
    })
}

fn roundtrip(format: &LinkFormat, frame: &Frame, octets: &[u8]) {
    let encoded = encode_to_bytes(format, frame).unwrap();
    assert_eq!(&encoded[..], octets, "{frame:?}");
    assert_eq!(frame_len(format, octets).unwrap(), Some(octets.len()));
    assert_eq!(&decode(format, octets).unwrap(), frame);
}

#[test]
fn single_character_ack() {
    roundtrip(&ONE, &Frame::Short, &[0xE5]);
}

#[test]
fn fixed_request_reset_link_without_fcv() {
    roundtrip(
        &ONE,
        &req(ReqFunction::ResetLink, false, false, 1, &[]),
        &[0x10, 0x40, 0x01, 0x41, 0x16],
    );
}

#[test]
fn fixed_request_class1_poll_with_fcb_and_fcv() {
    // C = PRM 0x40 | FCB 0x20 | FCV 0x10 | 10.
    roundtrip(
        &ONE,
        &req(ReqFunction::ReqData1, true, true, 3, &[]),
        &[0x10, 0x7A, 0x03, 0x7D, 0x16],
    );
    roundtrip(
        &ONE,
        &req(ReqFunction::ReqData2, false, true, 3, &[]),
        &[0x10, 0x5B, 0x03, 0x5E, 0x16],
    );
}

#[test]
fn fixed_response_with_acd_and_dfc() {
    roundtrip(
        &ONE,
        &res(ResFunction::Ack, true, false, 1, &[]),
        &[0x10, 0x20, 0x01, 0x21, 0x16],
    );
    roundtrip(
        &ONE,
        &res(ResFunction::ResStatus, false, true, 1, &[]),
        &[0x10, 0x1B, 0x01, 0x1C, 0x16],
    );
    roundtrip(
        &ONE,
        &res(ResFunction::ResNack, false, false, 0xFE, &[]),
        &[0x10, 0x09, 0xFE, 0x07, 0x16],
    );
}

#[test]
fn variable_frames_carry_user_data() {
    // 68 L L 68 C A data CS 16 with L = 1 + 1 + 3.
    roundtrip(
        &ONE,
        &res(ResFunction::ResData, false, false, 1, &[1, 2, 3]),
        &[
            0x68, 0x05, 0x05, 0x68, 0x08, 0x01, 0x01, 0x02, 0x03, 0x0F, 0x16,
        ],
    );
    roundtrip(
        &ONE,
        &req(ReqFunction::Data, true, true, 2, &[0xFF, 0xFF]),
        &[0x68, 0x04, 0x04, 0x68, 0x73, 0x02, 0xFF, 0xFF, 0x73, 0x16],
    );
}

#[test]
fn two_octet_addresses_are_little_endian() {
    roundtrip(
        &TWO,
        &req(ReqFunction::ReqStatus, false, false, 0x0102, &[]),
        &[0x10, 0x49, 0x02, 0x01, 0x4C, 0x16],
    );
    roundtrip(
        &TWO,
        &req(ReqFunction::DataNoRes, false, false, 0xFFFF, &[7]),
        &[0x68, 0x04, 0x04, 0x68, 0x44, 0xFF, 0xFF, 0x07, 0x49, 0x16],
    );
}

#[test]
fn balanced_frames_carry_dir_and_may_have_no_address() {
    let frame = Frame::Req(ReqFrame {
        direction: Some(Direction::AToB),
        frame_count_bit: true,
        frame_count_valid: true,
        function: ReqFunction::Test,
        address: 0,
        data: Bytes::new(),
    });
    // C = DIR 0x80 | PRM 0x40 | FCB 0x20 | FCV 0x10 | 2.
    roundtrip(&BALANCED_ZERO, &frame, &[0x10, 0xF2, 0xF2, 0x16]);
    let frame = Frame::Res(ResFrame {
        direction: Some(Direction::BToA),
        access_demand: false,
        data_flow_control: false,
        function: ResFunction::NotImplemented,
        address: 0,
        data: Bytes::new(),
    });
    roundtrip(&BALANCED_ZERO, &frame, &[0x10, 0x0F, 0x0F, 0x16]);
    // Unbalanced formats ignore bit 7 and never send it.
    let ub = decode(&ONE, &[0x10, 0xC9, 0x01, 0xCA, 0x16]).unwrap();
    assert_eq!(ub, req(ReqFunction::ReqStatus, false, false, 1, &[]));
}

#[test]
fn every_function_code_roundtrips() {
    for code in 0..16u8 {
        if let Some(function) = ReqFunction::from_code(code) {
            assert_eq!(function.code(), code);
            let frame = req(function, code % 2 == 0, true, 9, &[code]);
            let octets = encode_to_bytes(&TWO, &frame).unwrap();
            assert_eq!(decode(&TWO, &octets).unwrap(), frame);
        } else {
            let octets = [0x10, 0x40 | code, 0x01, (0x41 + code), 0x16];
            assert_eq!(
                decode(&ONE, &octets),
                Err(FrameError::Function {
                    code,
                    primary: true
                })
            );
        }
        if let Some(function) = ResFunction::from_code(code) {
            assert_eq!(function.code(), code);
            let frame = res(function, true, code % 2 == 0, 9, &[]);
            let octets = encode_to_bytes(&TWO, &frame).unwrap();
            assert_eq!(decode(&TWO, &octets).unwrap(), frame);
        }
    }
}

#[test]
fn bad_frames_are_errors() {
    assert_eq!(
        decode(&ONE, &[0x10, 0x40, 0x01, 0x42, 0x16]),
        Err(FrameError::Checksum {
            got: 0x42,
            expected: 0x41
        })
    );
    assert_eq!(
        decode(&ONE, &[0x10, 0x40, 0x01, 0x41, 0x17]),
        Err(FrameError::Stop(0x17))
    );
    assert_eq!(decode(&ONE, &[0x11]), Err(FrameError::Start(0x11)));
    assert_eq!(
        frame_len(&ONE, &[0x68, 0x05, 0x06, 0x68]),
        Err(FrameError::Length([5, 6, 0x68]))
    );
    assert_eq!(
        frame_len(&ONE, &[0x68, 0x05, 0x05, 0x10]),
        Err(FrameError::Length([5, 5, 0x10]))
    );
    assert_eq!(
        frame_len(&TWO, &[0x68, 0x02, 0x02, 0x68]),
        Err(FrameError::TooShort(2))
    );
    assert_eq!(frame_len(&ONE, &[0x68, 0x05]), Ok(None));
    assert!(matches!(
        decode(&ONE, &[0x10, 0x40, 0x01]),
        Err(FrameError::Incomplete { got: 3, needed: 5 })
    ));
}

#[test]
fn encode_limits() {
    assert_eq!(
        encode_to_bytes(&ONE, &req(ReqFunction::Data, false, true, 256, &[1])),
        Err(EncodeError::Address {
            address: 256,
            size: AddressSize::One
        })
    );
    assert_eq!(ONE.max_data_len(), 253);
    assert_eq!(
        encode_to_bytes(&ONE, &req(ReqFunction::Data, false, true, 1, &[0; 254])),
        Err(EncodeError::DataTooLong { len: 254, max: 253 })
    );
    let longest =
        encode_to_bytes(&ONE, &req(ReqFunction::Data, false, true, 1, &[0; 253])).unwrap();
    assert_eq!(&longest[..4], &[0x68, 0xFF, 0xFF, 0x68]);
    assert_eq!(longest.len(), 255 + 6);
}
