//! Unit tests of the data table: bit layout across register boundaries, reads of
//! unconfigured entries, writes turned into point values, mask writes, FC23 and FC24.

use modbus::{ExceptionCode, Request, Response};
use serde_json::json;

use crate::config::{DataConfig, DataType};
use crate::data::{AfterWrite, DataMap, Plan, WriteData};

fn point(name: &str, data_type: DataType, start: u16, offset: u32, count: u32) -> DataConfig {
    DataConfig {
        name: name.to_owned(),
        device_id: 1,
        data_type,
        start_address: start,
        bit_offset: offset,
        bit_count: count,
    }
}

fn map() -> DataMap {
    DataMap::new(&[
        // 24 bits from bit 4 of register 10: 12 bits of 10, 12 bits of 11.
        point("span", DataType::HoldingRegister, 10, 4, 24),
        point("low", DataType::HoldingRegister, 11, 12, 4),
        point("wide", DataType::InputRegister, 0, 0, 32),
        point("coils", DataType::Coil, 5, 1, 3),
        point("flag", DataType::DiscreteInput, 0, 0, 1),
        point("fifo", DataType::Queue, 7, 0, 16),
    ])
}

fn answer(plan: Plan) -> Result<Response, ExceptionCode> {
    match plan {
        Plan::Answer(reply) => reply,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn values_land_msb_first_across_register_boundaries() {
    let mut m = map();
    m.set("span", &json!(0xABC_DEF)).unwrap();
    m.set("low", &json!(0x5)).unwrap();
    let read = Request::ReadHoldingRegisters {
        address: 10,
        quantity: 2,
    };
    // Register 10: 4 skipped bits, then 0xABC; register 11: 0xDEF, then `low`.
    assert_eq!(
        answer(m.plan(1, &read)),
        Ok(Response::Registers(vec![0x0ABC, 0xDEF5]))
    );
    m.set("wide", &json!(0x1234_5678u32)).unwrap();
    let read = Request::ReadInputRegisters {
        address: 0,
        quantity: 2,
    };
    assert_eq!(
        answer(m.plan(1, &read)),
        Ok(Response::Registers(vec![0x1234, 0x5678]))
    );
    m.set("coils", &json!(0b101)).unwrap();
    let read = Request::ReadCoils {
        address: 6,
        quantity: 3,
    };
    assert_eq!(
        answer(m.plan(1, &read)),
        Ok(Response::Bits(vec![true, false, true]))
    );
    assert_eq!(m.value("span"), Some(0xABC_DEF));
}

#[test]
fn bad_values_and_names_are_refused_and_change_nothing() {
    let mut m = map();
    m.set("low", &json!(3)).unwrap();
    assert!(m.set("low", &json!(16)).is_err());
    assert!(m.set("low", &json!(-1)).is_err());
    assert!(m.set("low", &json!("1")).is_err());
    assert!(m.set("nope", &json!(1)).is_err());
    assert_eq!(m.value("low"), Some(3));
}

#[test]
fn unconfigured_entries_and_units_are_illegal_addresses() {
    let m = map();
    for request in [
        Request::ReadHoldingRegisters {
            address: 9,
            quantity: 2,
        },
        Request::ReadCoils {
            address: 5,
            quantity: 1,
        },
        Request::ReadDiscreteInputs {
            address: 0,
            quantity: 2,
        },
        Request::WriteSingleRegister {
            address: 12,
            value: 0,
        },
        Request::WriteSingleCoil {
            address: 9,
            value: true,
        },
        Request::MaskWriteRegister {
            address: 0,
            and_mask: 0,
            or_mask: 0,
        },
    ] {
        assert_eq!(
            answer(m.plan(1, &request)),
            Err(ExceptionCode::ILLEGAL_DATA_ADDRESS),
            "{request:?}"
        );
    }
    let read = Request::ReadHoldingRegisters {
        address: 10,
        quantity: 1,
    };
    assert_eq!(
        answer(m.plan(2, &read)),
        Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
    );
    assert!(m.has_device(1) && !m.has_device(2));
}

#[test]
fn register_writes_become_point_values_without_changing_the_table() {
    let mut m = map();
    m.set("span", &json!(0x111_111)).unwrap();
    let write = Request::WriteSingleRegister {
        address: 11,
        value: 0xABCD,
    };
    let Plan::Write { data, then } = m.plan(1, &write) else {
        panic!("expected a write");
    };
    // Register 11 holds the low 12 bits of `span` and all of `low`.
    assert_eq!(
        data,
        vec![
            WriteData {
                name: "span".into(),
                value: 0x111_ABC
            },
            WriteData {
                name: "low".into(),
                value: 0xD
            },
        ]
    );
    assert_eq!(
        then,
        AfterWrite::Echo(Response::WriteEcho {
            address: 11,
            value: 0xABCD
        })
    );
    assert_eq!(m.value("span"), Some(0x111_111));
}

#[test]
fn coil_writes_replace_only_the_written_bits() {
    let mut m = map();
    m.set("coils", &json!(0b000)).unwrap();
    let write = Request::WriteMultipleCoils {
        address: 7,
        values: vec![true, true],
    };
    let Plan::Write { data, .. } = m.plan(1, &write) else {
        panic!("expected a write");
    };
    assert_eq!(
        data,
        vec![WriteData {
            name: "coils".into(),
            value: 0b011
        }]
    );
}

#[test]
fn mask_writes_touch_only_points_the_mask_may_change() {
    let mut m = map();
    m.set("span", &json!(0)).unwrap();
    m.set("low", &json!(0)).unwrap();
    // AND keeps the 12 bits of `span` in register 11, the OR sets `low` to 0xF.
    let write = Request::MaskWriteRegister {
        address: 11,
        and_mask: 0xFFF0,
        or_mask: 0x000F,
    };
    let Plan::Write { data, then } = m.plan(1, &write) else {
        panic!("expected a write");
    };
    assert_eq!(
        data,
        vec![WriteData {
            name: "low".into(),
            value: 0xF
        }]
    );
    assert!(matches!(then, AfterWrite::Echo(Response::MaskEcho { .. })));
    // A mask that keeps every bit changes nothing: success without a round trip.
    let keep = Request::MaskWriteRegister {
        address: 11,
        and_mask: 0xFFFF,
        or_mask: 0,
    };
    assert!(matches!(m.plan(1, &keep), Plan::Answer(Ok(_))));
}

#[test]
fn read_write_registers_checks_both_ranges_and_reads_after() {
    let m = map();
    let rw = Request::ReadWriteMultipleRegisters {
        read_address: 10,
        read_quantity: 2,
        write_address: 10,
        values: vec![1],
    };
    let Plan::Write { then, .. } = m.plan(1, &rw) else {
        panic!("expected a write");
    };
    assert_eq!(
        then,
        AfterWrite::Read {
            address: 10,
            quantity: 2
        }
    );
    let bad_read = Request::ReadWriteMultipleRegisters {
        read_address: 0,
        read_quantity: 1,
        write_address: 10,
        values: vec![1],
    };
    assert_eq!(
        answer(m.plan(1, &bad_read)),
        Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
    );
}

#[test]
fn fifo_reads_the_queue_point_register() {
    let mut m = map();
    m.set("fifo", &json!(0x4242)).unwrap();
    assert_eq!(
        answer(m.plan(1, &Request::ReadFifoQueue { address: 7 })),
        Ok(Response::Registers(vec![0x4242]))
    );
    assert_eq!(
        answer(m.plan(1, &Request::ReadFifoQueue { address: 8 })),
        Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
    );
}
