//! Data points: read groups built from the configuration, value decoding from
//! registers and the request sequence that writes a value (`docs/modbus-master.md`
//! sections 3 and 4).

use crate::config::{DataConfig, DataType};
use modbus::Request;

/// One read request covering one or more points of the same type and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadGroup {
    /// Modbus table.
    pub data_type: DataType,
    /// Polling interval, s.
    pub interval: f64,
    /// First address read.
    pub start_address: u16,
    /// Registers (or bits) read.
    pub quantity: u32,
    /// Indices into the remote device's `data`, in group order.
    pub points: Vec<usize>,
}

impl ReadGroup {
    /// The read request for this group.
    pub fn request(&self) -> Request {
        let address = self.start_address;
        // Validation keeps start + quantity within 0x10000; an oversize single point
        // may exceed the protocol maximum and is sent as is (the slave rejects it).
        let quantity = u16::try_from(self.quantity).unwrap_or(u16::MAX);
        match self.data_type {
            DataType::Coil => Request::ReadCoils { address, quantity },
            DataType::DiscreteInput => Request::ReadDiscreteInputs { address, quantity },
            DataType::HoldingRegister => Request::ReadHoldingRegisters { address, quantity },
            DataType::InputRegister => Request::ReadInputRegisters { address, quantity },
            DataType::Queue => Request::ReadFifoQueue { address },
        }
    }
}

/// Builds the read groups of one remote device (`docs/modbus-master.md` section 3).
pub fn read_groups(data: &[DataConfig]) -> Vec<ReadGroup> {
    // Partitions keyed by (type, interval) in first-appearance order of the type, then
    // of the interval within the type.
    let mut types: Vec<DataType> = Vec::new();
    let mut partitions: Vec<(DataType, f64, Vec<usize>)> = Vec::new();
    for (i, point) in data.iter().enumerate() {
        let Some(interval) = point.interval else {
            continue;
        };
        if !types.contains(&point.data_type) {
            types.push(point.data_type);
        }
        match partitions
            .iter_mut()
            .find(|(t, iv, _)| *t == point.data_type && *iv == interval)
        {
            Some((_, _, members)) => members.push(i),
            None => partitions.push((point.data_type, interval, vec![i])),
        }
    }
    let mut groups = Vec::new();
    for data_type in types {
        for (_, interval, members) in partitions.iter().filter(|(t, _, _)| *t == data_type) {
            let mut sorted = members.clone();
            // Stable sort: equal keys keep configuration order.
            sorted.sort_by_key(|&i| (data[i].start_address, data[i].quantity()));
            let max = data_type.max_quantity();
            let mut current: Option<ReadGroup> = None;
            for i in sorted {
                let start = u32::from(data[i].start_address);
                let quantity = data[i].quantity();
                if let Some(group) = current.as_mut() {
                    let group_start = u32::from(group.start_address);
                    let span = start + quantity - group_start;
                    if start <= group_start + group.quantity && span <= max {
                        group.quantity = group.quantity.max(span);
                        group.points.push(i);
                        continue;
                    }
                    groups.extend(current.take());
                }
                current = Some(ReadGroup {
                    data_type,
                    interval: *interval,
                    start_address: data[i].start_address,
                    quantity,
                    points: vec![i],
                });
            }
            groups.extend(current);
        }
    }
    groups
}

/// Decodes a point's value from the group's registers (`docs/modbus-master.md` 4.1).
/// `offset` is the point's position in the group (`point start − group start`, in
/// registers or bits); registers missing from the response read as 0.
pub fn decode_value(point: &DataConfig, registers: &[u16], offset: usize) -> u64 {
    let size = point.data_type.register_size() as usize;
    let mut value: u64 = 0;
    let first_bit = point.bit_offset as usize;
    for bit in first_bit..first_bit + point.bit_count as usize {
        let register = registers.get(offset + bit / size).copied().unwrap_or(0);
        let shift = size - 1 - bit % size;
        value = (value << 1) | u64::from((register >> shift) & 1);
    }
    value
}

/// A written value that does not fit the point (`docs/modbus-master.md` Q6: rejected,
/// never truncated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteValueError {
    /// Negative, fractional, non-numeric, or wider than `bit_count` bits.
    #[error("value does not fit a {bit_count}-bit unsigned data point")]
    DoesNotFit {
        /// The point's width.
        bit_count: u32,
    },
    /// Only COIL and HOLDING_REGISTER points can be written.
    #[error("data type is not writable")]
    NotWritable,
}

/// Checks a JSON value against a point's width.
pub fn value_for_point(
    point: &DataConfig,
    value: &serde_json::Value,
) -> Result<u64, WriteValueError> {
    let err = WriteValueError::DoesNotFit {
        bit_count: point.bit_count,
    };
    let v = value.as_u64().ok_or(err.clone())?;
    if point.bit_count < 64 && v >> point.bit_count != 0 {
        return Err(err);
    }
    Ok(v)
}

/// The request sequence that writes `value` to `point` (`docs/modbus-master.md` 4.2).
/// Sent in order, stopping at the first non-success.
pub fn write_requests(point: &DataConfig, value: u64) -> Result<Vec<Request>, WriteValueError> {
    match point.data_type {
        DataType::Coil => Ok(vec![coil_write(point, value)]),
        DataType::HoldingRegister => Ok(register_writes(point, value)),
        _ => Err(WriteValueError::NotWritable),
    }
}

fn coil_write(point: &DataConfig, value: u64) -> Request {
    // Validation keeps the point inside the address space.
    let address = (u32::from(point.start_address) + point.bit_offset) as u16;
    let n = point.bit_count;
    let values: Vec<bool> = (0..n).map(|i| (value >> (n - 1 - i)) & 1 != 0).collect();
    match values.as_slice() {
        [single] => Request::WriteSingleCoil {
            address,
            value: *single,
        },
        _ => Request::WriteMultipleCoils { address, values },
    }
}

fn register_writes(point: &DataConfig, value: u64) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut address = u32::from(point.start_address) + point.bit_offset / 16;
    let off = point.bit_offset % 16;
    let mut n = point.bit_count;
    // Bits [lo, lo + len) of the value counted from its least significant end.
    let bits = |lo: u32, len: u32| -> u16 {
        if len == 0 {
            return 0;
        }
        ((value >> lo) & ((1u64 << len) - 1)) as u16
    };
    let low_ones = |len: u32| -> u16 { ((1u32 << len) - 1) as u16 };
    if off > 0 {
        let h = n.min(16 - off);
        let s = 16 - off - h;
        let and_mask = !low_ones(16 - off) | low_ones(s);
        let or_mask = bits(n - h, h) << s;
        requests.push(Request::MaskWriteRegister {
            address: address as u16,
            and_mask,
            or_mask,
        });
        address += 1;
        n -= h;
    }
    let k = n / 16;
    if k > 0 {
        let values: Vec<u16> = (0..k).map(|j| bits(n - 16 * (j + 1), 16)).collect();
        requests.push(match values.as_slice() {
            [single] => Request::WriteSingleRegister {
                address: address as u16,
                value: *single,
            },
            _ => Request::WriteMultipleRegisters {
                address: address as u16,
                values,
            },
        });
        address += k;
        n -= 16 * k;
    }
    if n > 0 {
        requests.push(Request::MaskWriteRegister {
            address: address as u16,
            and_mask: low_ones(16 - n),
            or_mask: bits(0, n) << (16 - n),
        });
    }
    requests
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
