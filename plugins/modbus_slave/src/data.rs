//! The slave's data: the table entries its points cover, filled from `system/data`
//! values, and what each request does to them (hat-gateway 0.6.48's slave semantics).
//!
//! Values are bit strings, most significant bit first: the first bit of a point is the
//! most significant bit of its value. In registers bit 0 of the string is the register's
//! bit 15. A table entry exists only if a point covers it; requests touching any other
//! entry are answered `ILLEGAL_DATA_ADDRESS`. Writes from a master do not change the
//! table: they become `gateway/write` data and only a later `system/data` does.

use std::collections::{HashMap, HashSet};

use modbus::{ExceptionCode, Reply, Request, Response};

use crate::config::{DataConfig, DataType};

/// One point's new value, as `gateway/write` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteData {
    /// Point name.
    pub name: String,
    /// Value with the master's bits in place.
    pub value: u64,
}

/// What to answer after a write's round trip succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterWrite {
    /// The write's normal echo.
    Echo(Response),
    /// FC23: the registers read after the write.
    Read {
        /// First holding register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Answer at once.
    Answer(Reply),
    /// Register `data` as `gateway/write`, wait for `system/write`, then answer.
    Write {
        /// The points the write touches.
        data: Vec<WriteData>,
        /// The answer on success.
        then: AfterWrite,
    },
}

/// Why a `system/data` value was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// No point of that name.
    #[error("data {0} not configured")]
    UnknownName(String),
    /// Not a non-negative integer that fits the point's bit count.
    #[error("invalid value for {name}: {value}")]
    BadValue {
        /// Point name.
        name: String,
        /// The value as received.
        value: String,
    },
}

/// A configured point, resolved.
#[derive(Debug, Clone)]
struct Point {
    name: String,
    device_id: u8,
    data_type: DataType,
    bit_start: u32,
    bit_count: u32,
}

type Table = HashMap<u16, u16>;

/// The table entries of every unit id and their current values.
#[derive(Debug)]
pub struct DataMap {
    points: Vec<Point>,
    by_name: HashMap<String, usize>,
    device_ids: HashSet<u8>,
    tables: HashMap<(u8, DataType), Table>,
}

impl DataMap {
    /// Every point's entries, all values zero.
    pub fn new(data: &[DataConfig]) -> Self {
        let points: Vec<Point> = data
            .iter()
            .map(|d| Point {
                name: d.name.clone(),
                device_id: d.device_id,
                data_type: d.data_type,
                bit_start: d.bit_start(),
                bit_count: d.bit_count,
            })
            .collect();
        let mut map = Self {
            by_name: points
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
            device_ids: points.iter().map(|p| p.device_id).collect(),
            points,
            tables: HashMap::new(),
        };
        for i in 0..map.points.len() {
            map.store(i, 0);
        }
        map
    }

    /// True if some point answers under `unit`.
    pub fn has_device(&self, unit: u8) -> bool {
        self.device_ids.contains(&unit)
    }

    /// Takes a `system/data` value for point `name`.
    pub fn set(&mut self, name: &str, value: &serde_json::Value) -> Result<(), DataError> {
        let &index = self
            .by_name
            .get(name)
            .ok_or_else(|| DataError::UnknownName(name.to_owned()))?;
        let bit_count = self.points[index].bit_count;
        let fits = |v: u64| bit_count >= 64 || v >> bit_count == 0;
        match value.as_u64() {
            Some(v) if fits(v) => {
                self.store(index, v);
                Ok(())
            }
            _ => Err(DataError::BadValue {
                name: name.to_owned(),
                value: value.to_string(),
            }),
        }
    }

    /// Current value of point `name` (tests and logs).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|&i| self.load(i))
    }

    fn store(&mut self, index: usize, value: u64) {
        let point = self.points[index].clone();
        let table = self
            .tables
            .entry((point.device_id, point.data_type))
            .or_default();
        for i in 0..point.bit_count {
            let bit = (value >> (point.bit_count - 1 - i)) & 1 == 1;
            set_bit(table, point.data_type, point.bit_start + i, bit);
        }
    }

    fn load(&self, index: usize) -> u64 {
        let point = &self.points[index];
        let table = self.tables.get(&(point.device_id, point.data_type));
        (0..point.bit_count).fold(0, |value, i| {
            let bit = table.is_some_and(|t| get_bit(t, point.data_type, point.bit_start + i));
            value << 1 | u64::from(bit)
        })
    }

    /// What request `request` to unit `unit` needs.
    pub fn plan(&self, unit: u8, request: &Request) -> Plan {
        match self.plan_inner(unit, request) {
            Ok(plan) => plan,
            Err(code) => Plan::Answer(Err(code)),
        }
    }

    fn plan_inner(&self, unit: u8, request: &Request) -> Result<Plan, ExceptionCode> {
        let answer = |reply: Result<Response, ExceptionCode>| Ok(Plan::Answer(reply));
        match *request {
            Request::ReadCoils { address, quantity } => {
                answer(self.read(unit, DataType::Coil, address, quantity))
            }
            Request::ReadDiscreteInputs { address, quantity } => {
                answer(self.read(unit, DataType::DiscreteInput, address, quantity))
            }
            Request::ReadHoldingRegisters { address, quantity } => {
                answer(self.read(unit, DataType::HoldingRegister, address, quantity))
            }
            Request::ReadInputRegisters { address, quantity } => {
                answer(self.read(unit, DataType::InputRegister, address, quantity))
            }
            // hat reads one entry of the queue at the FIFO pointer address.
            Request::ReadFifoQueue { address } => {
                answer(self.read(unit, DataType::Queue, address, 1))
            }
            Request::WriteSingleCoil { address, value } => {
                let data = self.write_data(unit, DataType::Coil, address, &[value])?;
                let echo = Response::WriteEcho {
                    address,
                    value: if value { 0xFF00 } else { 0 },
                };
                Ok(write_plan(data, AfterWrite::Echo(echo)))
            }
            Request::WriteMultipleCoils {
                address,
                ref values,
            } => {
                let data = self.write_data(unit, DataType::Coil, address, values)?;
                let echo = Response::WriteEcho {
                    address,
                    value: values.len() as u16,
                };
                Ok(write_plan(data, AfterWrite::Echo(echo)))
            }
            Request::WriteSingleRegister { address, value } => {
                let data = self.write_registers(unit, address, &[value])?;
                let echo = Response::WriteEcho { address, value };
                Ok(write_plan(data, AfterWrite::Echo(echo)))
            }
            Request::WriteMultipleRegisters {
                address,
                ref values,
            } => {
                let data = self.write_registers(unit, address, values)?;
                let echo = Response::WriteEcho {
                    address,
                    value: values.len() as u16,
                };
                Ok(write_plan(data, AfterWrite::Echo(echo)))
            }
            Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                ref values,
            } => {
                // Both ranges are checked before anything is written.
                self.read(unit, DataType::HoldingRegister, read_address, read_quantity)?;
                let data = self.write_registers(unit, write_address, values)?;
                let then = AfterWrite::Read {
                    address: read_address,
                    quantity: read_quantity,
                };
                Ok(write_plan(data, then))
            }
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                let data = self.mask_data(unit, address, and_mask, or_mask)?;
                let echo = Response::MaskEcho {
                    address,
                    and_mask,
                    or_mask,
                };
                Ok(write_plan(data, AfterWrite::Echo(echo)))
            }
        }
    }

    /// Reads `quantity` entries of `data_type` from `address`.
    pub fn read(
        &self,
        unit: u8,
        data_type: DataType,
        address: u16,
        quantity: u16,
    ) -> Result<Response, ExceptionCode> {
        let table = self
            .tables
            .get(&(unit, data_type))
            .ok_or(ExceptionCode::ILLEGAL_DATA_ADDRESS)?;
        let values = (0..quantity)
            .map(|i| {
                let entry = address.checked_add(i)?;
                table.get(&entry).copied()
            })
            .collect::<Option<Vec<u16>>>()
            .ok_or(ExceptionCode::ILLEGAL_DATA_ADDRESS)?;
        Ok(match data_type {
            DataType::Coil | DataType::DiscreteInput => {
                Response::Bits(values.iter().map(|v| *v != 0).collect())
            }
            _ => Response::Registers(values),
        })
    }

    fn check_entries(
        &self,
        unit: u8,
        data_type: DataType,
        address: u16,
        count: usize,
    ) -> Result<(), ExceptionCode> {
        let table = self
            .tables
            .get(&(unit, data_type))
            .ok_or(ExceptionCode::ILLEGAL_DATA_ADDRESS)?;
        let all = (0..count).all(|i| {
            u16::try_from(usize::from(address) + i).is_ok_and(|entry| table.contains_key(&entry))
        });
        if all {
            Ok(())
        } else {
            Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)
        }
    }

    fn write_registers(
        &self,
        unit: u8,
        address: u16,
        values: &[u16],
    ) -> Result<Vec<WriteData>, ExceptionCode> {
        let bits: Vec<bool> = values
            .iter()
            .flat_map(|v| (0..16).map(move |i| (v >> (15 - i)) & 1 == 1))
            .collect();
        self.check_entries(unit, DataType::HoldingRegister, address, values.len())?;
        Ok(self.overlap_data(unit, DataType::HoldingRegister, address, &bits))
    }

    fn write_data(
        &self,
        unit: u8,
        data_type: DataType,
        address: u16,
        bits: &[bool],
    ) -> Result<Vec<WriteData>, ExceptionCode> {
        self.check_entries(unit, data_type, address, bits.len())?;
        Ok(self.overlap_data(unit, data_type, address, bits))
    }

    /// Every point of `unit`/`data_type` the bits written from entry `address` overlap,
    /// with its current value and the overlapping bits replaced (configuration order).
    fn overlap_data(
        &self,
        unit: u8,
        data_type: DataType,
        address: u16,
        bits: &[bool],
    ) -> Vec<WriteData> {
        let req_start = u32::from(address) * data_type.register_size();
        let req_end = req_start + bits.len() as u32;
        let mut data = Vec::new();
        for (index, point) in self.points.iter().enumerate() {
            if point.data_type != data_type || point.device_id != unit {
                continue;
            }
            let start = point.bit_start.max(req_start);
            let end = (point.bit_start + point.bit_count).min(req_end);
            if start >= end {
                continue;
            }
            let mut value = self.load(index);
            for bit_address in start..end {
                let shift = point.bit_count - 1 - (bit_address - point.bit_start);
                let bit = bits[(bit_address - req_start) as usize];
                value = value & !(1 << shift) | u64::from(bit) << shift;
            }
            data.push(WriteData {
                name: point.name.clone(),
                value,
            });
        }
        data
    }

    fn mask_data(
        &self,
        unit: u8,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<Vec<WriteData>, ExceptionCode> {
        let data_type = DataType::HoldingRegister;
        self.check_entries(unit, data_type, address, 1)?;
        let previous = self
            .tables
            .get(&(unit, data_type))
            .and_then(|t| t.get(&address))
            .copied()
            .unwrap_or(0);
        let value = (previous & and_mask) | (or_mask & !and_mask);
        let bits: Vec<bool> = (0..16).map(|i| (value >> (15 - i)) & 1 == 1).collect();
        let request_start = u32::from(address) * 16;
        // hat keeps only the points with a bit the mask may change (AND bit 0).
        let data = self
            .overlap_data(unit, data_type, address, &bits)
            .into_iter()
            .filter(|d| {
                let point = &self.points[self.by_name[&d.name]];
                let start = point.bit_start.max(request_start);
                let end = (point.bit_start + point.bit_count).min(request_start + 16);
                (start..end).any(|b| (and_mask >> (15 - b % 16)) & 1 == 0)
            })
            .collect();
        Ok(data)
    }
}

fn write_plan(data: Vec<WriteData>, then: AfterWrite) -> Plan {
    if data.is_empty() {
        // Nothing configured is touched: hat answers success without an event.
        return Plan::Answer(match then {
            AfterWrite::Echo(echo) => Ok(echo),
            AfterWrite::Read { .. } => Err(ExceptionCode::ILLEGAL_DATA_ADDRESS),
        });
    }
    Plan::Write { data, then }
}

fn set_bit(table: &mut Table, data_type: DataType, bit_address: u32, bit: bool) {
    match data_type {
        DataType::Coil | DataType::DiscreteInput => {
            table.insert(bit_address as u16, u16::from(bit));
        }
        _ => {
            let entry = table.entry((bit_address / 16) as u16).or_insert(0);
            let mask = 1 << (15 - bit_address % 16);
            if bit {
                *entry |= mask;
            } else {
                *entry &= !mask;
            }
        }
    }
}

fn get_bit(table: &Table, data_type: DataType, bit_address: u32) -> bool {
    match data_type {
        DataType::Coil | DataType::DiscreteInput => {
            table.get(&(bit_address as u16)).is_some_and(|v| *v != 0)
        }
        _ => table
            .get(&((bit_address / 16) as u16))
            .is_some_and(|v| v >> (15 - bit_address % 16) & 1 == 1),
    }
}
