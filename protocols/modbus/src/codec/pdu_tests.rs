//! PDU codec tests: request and response encodings both ways, lengths, bad input.

use crate::codec::pdu::*;
use crate::frame::{ExceptionCode, Request, Response};

fn bytes(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    request.encode(&mut out);
    out
}

fn every_request() -> Vec<Request> {
    vec![
        Request::ReadCoils {
            address: 0x13,
            quantity: 19,
        },
        Request::ReadDiscreteInputs {
            address: 0xC4,
            quantity: 22,
        },
        Request::ReadHoldingRegisters {
            address: 0x6B,
            quantity: 3,
        },
        Request::ReadInputRegisters {
            address: 8,
            quantity: 1,
        },
        Request::WriteSingleCoil {
            address: 0xAC,
            value: true,
        },
        Request::WriteSingleRegister {
            address: 1,
            value: 3,
        },
        Request::WriteMultipleCoils {
            address: 0x13,
            values: vec![
                true, false, true, true, false, false, true, true, true, false,
            ],
        },
        Request::WriteMultipleRegisters {
            address: 1,
            values: vec![0x000A, 0x0102],
        },
        Request::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25,
        },
        Request::ReadWriteMultipleRegisters {
            read_address: 3,
            read_quantity: 6,
            write_address: 0x0E,
            values: vec![0xFF, 0xFF, 0xFF],
        },
        Request::ReadFifoQueue { address: 0x4DE },
    ]
}

#[test]
fn encodes_requests() {
    assert_eq!(
        bytes(&Request::ReadHoldingRegisters {
            address: 0x6B,
            quantity: 3
        }),
        [3, 0, 0x6B, 0, 3]
    );
    assert_eq!(
        bytes(&Request::WriteSingleCoil {
            address: 0xAC,
            value: true
        }),
        [5, 0, 0xAC, 0xFF, 0]
    );
    assert_eq!(
        bytes(&Request::WriteMultipleCoils {
            address: 0x13,
            values: vec![true, false, true, true, false, false, true, true, true, false],
        }),
        [15, 0, 0x13, 0, 10, 2, 0xCD, 0x01]
    );
    assert_eq!(
        bytes(&Request::WriteMultipleRegisters {
            address: 1,
            values: vec![0x000A, 0x0102]
        }),
        [16, 0, 1, 0, 2, 4, 0, 0x0A, 1, 2]
    );
    assert_eq!(
        bytes(&Request::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25
        }),
        [22, 0, 4, 0, 0xF2, 0, 0x25]
    );
    // The example of the Modbus application protocol specification.
    assert_eq!(
        bytes(&Request::ReadWriteMultipleRegisters {
            read_address: 3,
            read_quantity: 6,
            write_address: 0x0E,
            values: vec![0xFF, 0xFF, 0xFF],
        }),
        [23, 0, 3, 0, 6, 0, 0x0E, 0, 3, 6, 0, 0xFF, 0, 0xFF, 0, 0xFF]
    );
    assert_eq!(
        bytes(&Request::ReadFifoQueue { address: 0x4DE }),
        [24, 4, 0xDE]
    );
}

#[test]
fn every_request_decodes_back_and_has_its_rtu_length() {
    for request in every_request() {
        let pdu = bytes(&request);
        assert_eq!(decode_request(&pdu), Ok(request.clone()), "{request:?}");
        assert_eq!(request_len(&pdu), Ok(Some(pdu.len())), "{request:?}");
        for cut in 1..pdu.len() {
            assert!(matches!(request_len(&pdu[..cut]), Ok(None) | Ok(Some(_))));
            assert!(
                decode_request(&pdu[..cut]).is_err(),
                "{request:?} cut {cut}"
            );
        }
    }
}

#[test]
fn bad_requests_name_the_exception() {
    let code = |pdu: &[u8]| decode_request(pdu).map_err(|e| e.exception);
    assert_eq!(code(&[7]), Err(ExceptionCode::ILLEGAL_FUNCTION));
    assert_eq!(code(&[0x2B, 0x0E]), Err(ExceptionCode::ILLEGAL_FUNCTION));
    assert_eq!(code(&[]), Err(ExceptionCode::ILLEGAL_FUNCTION));
    // Quantity 0, quantity over the limit.
    assert_eq!(
        code(&[3, 0, 0, 0, 0]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert_eq!(
        code(&[3, 0, 0, 0, 126]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert_eq!(
        code(&[1, 0, 0, 0x07, 0xD1]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert!(code(&[1, 0, 0, 0x07, 0xD0]).is_ok());
    // Past the last address.
    assert_eq!(
        code(&[3, 0xFF, 0xFF, 0, 2]),
        Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
    );
    assert!(code(&[3, 0xFF, 0xFF, 0, 1]).is_ok());
    // Coil value other than 0xFF00 / 0x0000.
    assert_eq!(
        code(&[5, 0, 1, 0x12, 0x34]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    // Byte count disagreeing with the quantity, trailing bytes.
    assert_eq!(
        code(&[16, 0, 1, 0, 2, 3, 0, 1, 0]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert_eq!(
        code(&[15, 0, 1, 0, 9, 1, 0xFF]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert_eq!(
        code(&[6, 0, 1, 0, 2, 9]),
        Err(ExceptionCode::ILLEGAL_DATA_VALUE)
    );
    assert_eq!(code(&[24, 0]), Err(ExceptionCode::ILLEGAL_DATA_VALUE));
    let err = decode_request(&[3, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(err.function, 3);
}

#[test]
fn decodes_responses() {
    assert_eq!(
        decode_response(&[1, 1, 0b101]).unwrap(),
        Ok(Response::Bits(vec![
            true, false, true, false, false, false, false, false
        ]))
    );
    assert_eq!(
        decode_response(&[3, 4, 0x12, 0x34, 0, 1]).unwrap(),
        Ok(Response::Registers(vec![0x1234, 1]))
    );
    assert_eq!(
        decode_response(&[0x83, 2]).unwrap(),
        Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
    );
    assert_eq!(
        decode_response(&[24, 0, 6, 0, 2, 1, 0xB8, 0x12, 0x84]).unwrap(),
        Ok(Response::Registers(vec![0x01B8, 0x1284]))
    );
    assert_eq!(
        decode_response(&[24, 0, 2, 0, 0]).unwrap(),
        Ok(Response::Registers(vec![]))
    );
    assert_eq!(
        decode_response(&[23, 2, 0, 7]).unwrap(),
        Ok(Response::Registers(vec![7]))
    );
}

#[test]
fn encoded_responses_decode_back() {
    let cases: Vec<(u8, Response)> = vec![
        (1, Response::Bits(vec![true; 8])),
        (
            2,
            Response::Bits(vec![false, true, false, false, false, false, false, false]),
        ),
        (3, Response::Registers(vec![1, 0xFFFF])),
        (4, Response::Registers(vec![0])),
        (23, Response::Registers(vec![5, 6])),
        (24, Response::Registers(vec![0x01B8, 0x1284])),
        (
            6,
            Response::WriteEcho {
                address: 1,
                value: 3,
            },
        ),
        (
            22,
            Response::MaskEcho {
                address: 4,
                and_mask: 0xF2,
                or_mask: 0x25,
            },
        ),
    ];
    for (function, response) in cases {
        let mut out = Vec::new();
        encode_response(function, &Ok(response.clone()), &mut out);
        assert_eq!(response_len(&out), Ok(Some(out.len())));
        assert_eq!(
            decode_response(&out),
            Ok(Ok(response)),
            "function {function}"
        );
    }
    let mut out = Vec::new();
    encode_response(24, &Ok(Response::Registers(vec![0x01B8, 0x1284])), &mut out);
    assert_eq!(out, [24, 0, 6, 0, 2, 1, 0xB8, 0x12, 0x84]);
    out.clear();
    encode_response(3, &Err(ExceptionCode::ILLEGAL_DATA_ADDRESS), &mut out);
    assert_eq!(out, [0x83, 2]);
    out.clear();
    // Ten coils go out as two bytes, the unused bits zero.
    encode_response(1, &Ok(Response::Bits(vec![true; 10])), &mut out);
    assert_eq!(out, [1, 2, 0xFF, 0x03]);
}

#[test]
fn rejects_inconsistent_responses() {
    assert_eq!(
        decode_response(&[3, 3, 0, 0, 0]),
        Err(PduError::BadLength(3))
    );
    assert_eq!(decode_response(&[3, 4, 0, 0]), Err(PduError::BadLength(3)));
    assert_eq!(decode_response(&[7, 0]), Err(PduError::UnknownFunction(7)));
    assert_eq!(
        decode_response(&[24, 0, 6, 0, 2, 0, 0]),
        Err(PduError::BadLength(24))
    );
    assert_eq!(decode_response(&[0x83]), Err(PduError::BadLength(0x83)));
    assert_eq!(decode_response(&[]), Err(PduError::Truncated(0)));
}

#[test]
fn response_lengths_for_rtu() {
    assert_eq!(response_len(&[]), Ok(None));
    assert_eq!(response_len(&[3]), Ok(None));
    assert_eq!(response_len(&[3, 4]), Ok(Some(6)));
    assert_eq!(response_len(&[0x86]), Ok(Some(2)));
    assert_eq!(response_len(&[22]), Ok(Some(7)));
    assert_eq!(response_len(&[24, 0]), Ok(None));
    assert_eq!(response_len(&[24, 0, 4]), Ok(Some(7)));
    assert_eq!(response_len(&[9]), Err(PduError::UnknownFunction(9)));
    assert_eq!(request_len(&[15, 0, 0, 0]), Ok(None));
    assert_eq!(request_len(&[9]), Err(PduError::UnknownFunction(9)));
}

#[test]
fn exception_names() {
    assert_eq!(ExceptionCode(2).name(), "INVALID_DATA_ADDRESS");
    assert_eq!(
        ExceptionCode::GATEWAY_TARGET_FAILED.name(),
        "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
    );
    assert_eq!(ExceptionCode(6).name(), "SERVER_DEVICE_BUSY");
    assert_eq!(ExceptionCode(0x42).name(), "EXCEPTION_66");
    assert_eq!(ExceptionCode(1).to_string(), "INVALID_FUNCTION_CODE (1)");
}

#[test]
fn write_echo_checks() {
    let req = Request::WriteSingleRegister {
        address: 5,
        value: 7,
    };
    let echo = |address, value| Ok(Response::WriteEcho { address, value });
    assert_eq!(req.echo_matches(&echo(5, 7)), Some(true));
    assert_eq!(req.echo_matches(&echo(5, 8)), Some(false));
    assert_eq!(
        req.echo_matches(&Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)),
        Some(true)
    );
    let read = Request::ReadCoils {
        address: 0,
        quantity: 1,
    };
    assert_eq!(read.echo_matches(&Ok(Response::Bits(vec![true]))), None);
}
