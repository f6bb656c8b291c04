//! Unit tests of read grouping, value decoding and write sequences (the vectors of
//! `docs/modbus-master.md` sections 3 and 4).

use super::*;
use serde_json::json;

fn point(
    name: &str,
    data_type: DataType,
    interval: Option<f64>,
    start: u16,
    offset: u32,
    count: u32,
) -> DataConfig {
    DataConfig {
        name: name.into(),
        interval,
        data_type,
        start_address: start,
        bit_offset: offset,
        bit_count: count,
    }
}

fn hr(offset: u32, count: u32) -> DataConfig {
    point("x", DataType::HoldingRegister, Some(1.0), 0, offset, count)
}

#[test]
fn read_vectors_of_spec_4_1() {
    let cases: &[(DataType, u32, u32, &[u16], u64)] = &[
        (DataType::Coil, 0, 1, &[0], 0),
        (DataType::Coil, 0, 1, &[1], 1),
        (DataType::DiscreteInput, 0, 2, &[1, 1], 3),
        (DataType::HoldingRegister, 0, 32, &[0, 1], 1),
        (DataType::HoldingRegister, 0, 2, &[0x4000], 1),
        (DataType::InputRegister, 8, 2, &[0x0080], 2),
        (
            DataType::HoldingRegister,
            8,
            32,
            &[0x1234, 0x5678, 0x9ABC],
            0x3456_789A,
        ),
        (DataType::Coil, 0, 3, &[1, 1, 1], 7),
    ];
    for (data_type, offset, count, registers, value) in cases {
        let p = point("x", *data_type, Some(1.0), 123, *offset, *count);
        assert_eq!(
            decode_value(&p, registers, 0),
            *value,
            "{data_type:?} {offset} {count}"
        );
    }
}

#[test]
fn missing_registers_read_as_zero_and_offsets_apply() {
    assert_eq!(decode_value(&hr(0, 32), &[0xFFFF], 0), 0xFFFF_0000);
    assert_eq!(decode_value(&hr(0, 16), &[1, 2, 3], 2), 3);
}

#[test]
fn quantity_is_ceiling_of_bits_over_register_size() {
    assert_eq!(hr(8, 32).quantity(), 3);
    assert_eq!(hr(0, 16).quantity(), 1);
    assert_eq!(point("c", DataType::Coil, None, 0, 2, 3).quantity(), 5);
}

#[test]
fn groups_merge_adjacent_and_overlapping_only() {
    let data = vec![
        point("a", DataType::HoldingRegister, Some(1.0), 10, 0, 16),
        point("b", DataType::HoldingRegister, Some(1.0), 11, 0, 32),
        point("c", DataType::HoldingRegister, Some(1.0), 12, 0, 16),
        point("gap", DataType::HoldingRegister, Some(1.0), 14, 0, 16),
        point("slow", DataType::HoldingRegister, Some(2.0), 15, 0, 16),
        point("coil", DataType::Coil, Some(1.0), 13, 0, 1),
        point("never", DataType::HoldingRegister, None, 13, 0, 16),
    ];
    let groups = read_groups(&data);
    let summary: Vec<_> = groups
        .iter()
        .map(|g| {
            (
                g.data_type,
                g.interval,
                g.start_address,
                g.quantity,
                g.points.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (DataType::HoldingRegister, 1.0, 10, 3, vec![0, 1, 2]),
            (DataType::HoldingRegister, 1.0, 14, 1, vec![3]),
            (DataType::HoldingRegister, 2.0, 15, 1, vec![4]),
            (DataType::Coil, 1.0, 13, 1, vec![5]),
        ]
    );
}

#[test]
fn groups_respect_maximum_span() {
    let regs: Vec<_> = (0..300u16)
        .map(|i| point("r", DataType::InputRegister, Some(1.0), i, 0, 16))
        .collect();
    let groups = read_groups(&regs);
    assert_eq!(
        groups.iter().map(|g| g.quantity).collect::<Vec<_>>(),
        [125, 125, 50]
    );
    let coils: Vec<_> = (0..2500u16)
        .map(|i| point("c", DataType::Coil, Some(1.0), i, 0, 1))
        .collect();
    assert_eq!(
        read_groups(&coils)
            .iter()
            .map(|g| g.quantity)
            .collect::<Vec<_>>(),
        [2000, 500]
    );
    let queues = vec![
        point("q1", DataType::Queue, Some(1.0), 5, 0, 16),
        point("q2", DataType::Queue, Some(1.0), 6, 0, 16),
    ];
    let groups = read_groups(&queues);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].request(), Request::ReadFifoQueue { address: 5 });
    let oversize = vec![
        point("big", DataType::HoldingRegister, Some(1.0), 0, 0, 64),
        hr(0, 16),
    ];
    assert_eq!(read_groups(&oversize).len(), 1);
}

#[test]
fn write_vectors_of_spec_4_2() {
    use Request::*;
    let cases: Vec<(DataConfig, u64, Vec<Request>)> = vec![
        (
            point("c", DataType::Coil, None, 0, 0, 1),
            0,
            vec![WriteSingleCoil {
                address: 0,
                value: false,
            }],
        ),
        (
            point("c", DataType::Coil, None, 0, 0, 1),
            1,
            vec![WriteSingleCoil {
                address: 0,
                value: true,
            }],
        ),
        (
            point("c", DataType::Coil, None, 0, 2, 2),
            3,
            vec![WriteMultipleCoils {
                address: 2,
                values: vec![true, true],
            }],
        ),
        (
            hr(0, 16),
            123,
            vec![WriteSingleRegister {
                address: 0,
                value: 123,
            }],
        ),
        (
            hr(0, 32),
            0x1234_5678,
            vec![WriteMultipleRegisters {
                address: 0,
                values: vec![0x1234, 0x5678],
            }],
        ),
        (
            hr(0, 2),
            3,
            vec![MaskWriteRegister {
                address: 0,
                and_mask: 0x3FFF,
                or_mask: 0xC000,
            }],
        ),
        (
            hr(2, 2),
            3,
            vec![MaskWriteRegister {
                address: 0,
                and_mask: 0xCFFF,
                or_mask: 0x3000,
            }],
        ),
        (
            hr(8, 16),
            0xFFFF,
            vec![
                MaskWriteRegister {
                    address: 0,
                    and_mask: 0xFF00,
                    or_mask: 0x00FF,
                },
                MaskWriteRegister {
                    address: 1,
                    and_mask: 0x00FF,
                    or_mask: 0xFF00,
                },
            ],
        ),
        (
            hr(8, 32),
            0xFFFF_FFFF,
            vec![
                MaskWriteRegister {
                    address: 0,
                    and_mask: 0xFF00,
                    or_mask: 0x00FF,
                },
                WriteSingleRegister {
                    address: 1,
                    value: 0xFFFF,
                },
                MaskWriteRegister {
                    address: 2,
                    and_mask: 0x00FF,
                    or_mask: 0xFF00,
                },
            ],
        ),
        (
            point("h", DataType::HoldingRegister, None, 11, 4, 8),
            0xAB,
            vec![MaskWriteRegister {
                address: 11,
                and_mask: 0xF00F,
                or_mask: 0x0AB0,
            }],
        ),
    ];
    for (p, value, expected) in cases {
        assert_eq!(
            write_requests(&p, value).unwrap(),
            expected,
            "{p:?} {value:#x}"
        );
    }
}

#[test]
fn only_coils_and_holding_registers_are_writable() {
    for t in [
        DataType::DiscreteInput,
        DataType::InputRegister,
        DataType::Queue,
    ] {
        let p = point("x", t, None, 0, 0, 1);
        assert_eq!(write_requests(&p, 1), Err(WriteValueError::NotWritable));
    }
}

#[test]
fn values_that_do_not_fit_are_rejected() {
    let p = hr(0, 8);
    assert_eq!(value_for_point(&p, &json!(255)), Ok(255));
    let fits = |v| value_for_point(&p, &v).is_ok();
    assert!(!fits(json!(256)));
    assert!(!fits(json!(-1)));
    assert!(!fits(json!(1.5)));
    assert!(!fits(json!("1")));
    assert_eq!(value_for_point(&hr(0, 64), &json!(u64::MAX)), Ok(u64::MAX));
}
