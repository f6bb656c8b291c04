//! Messages to ASDU octets, packing consecutive data messages into one ASDU.

use super::elements::{normalized, put_command, put_data, put_time};
use super::table::{lookup, Element, TypeInfo};
use super::{AsduCodec, AsduError, CauseSize, MAX_ASDU_SIZE_LIMIT, MAX_OBJECTS_PER_ASDU};
use crate::types::{Command, Data, Msg, Parameter, Time, TimeSize};

/// Where one message goes: its type id and the fields its ASDU's header shares.
#[derive(Debug, Clone, Copy)]
struct Plan {
    type_id: u8,
    info: TypeInfo,
    /// The whole first cause octet: cause, P/N and T bits.
    cause: u8,
    originator_address: u8,
    asdu_address: u16,
    io_address: u32,
    time: Option<Time>,
    /// Data messages share ASDUs; every other kind travels alone.
    packable: bool,
}

impl Plan {
    /// Whether `other` can go into the same ASDU as `self`.
    fn same_asdu(&self, other: &Plan) -> bool {
        self.packable
            && self.type_id == other.type_id
            && self.cause == other.cause
            && self.originator_address == other.originator_address
            && self.asdu_address == other.asdu_address
    }
}

fn out_of_range(field: &'static str) -> AsduError {
    AsduError::OutOfRange { field }
}

fn unsupported(reason: &'static str) -> AsduError {
    AsduError::Unsupported { reason }
}

fn cause_octet(cause: u8, is_negative_confirm: bool, is_test: bool) -> Result<u8, AsduError> {
    if cause > 0x3F {
        return Err(out_of_range("cause"));
    }
    Ok(cause | if is_negative_confirm { 0x40 } else { 0 } | if is_test { 0x80 } else { 0 })
}

/// The time tag size a time of `time.size` selects (104: CP56 only; 101: CP56 for
/// SEVEN, CP24 for THREE and FOUR, as hat picks them).
fn tag_size(iec104: bool, time: &Time) -> Result<TimeSize, AsduError> {
    match (iec104, time.size) {
        (_, TimeSize::Seven) => Ok(TimeSize::Seven),
        (false, TimeSize::Three | TimeSize::Four) => Ok(TimeSize::Three),
        (true, _) => Err(unsupported("104 time tags are CP56 (size SEVEN)")),
        (false, _) => Err(unsupported("time tag of size TWO")),
    }
}

fn data_type_id(iec104: bool, data: &Data, time: Option<&Time>) -> Result<u8, AsduError> {
    let Some(time) = time else {
        return match data {
            Data::Single(_) => Ok(1),
            Data::Double(_) => Ok(3),
            Data::StepPosition(_) => Ok(5),
            Data::Bitstring(_) => Ok(7),
            Data::Normalized(d) if d.quality.is_some() => Ok(9),
            Data::Normalized(_) => Ok(21),
            Data::Scaled(_) => Ok(11),
            Data::Floating(_) => Ok(13),
            Data::BinaryCounter(_) => Ok(15),
            Data::Status(_) => Ok(20),
            Data::Protection(_) | Data::ProtectionStart(_) | Data::ProtectionCommand(_) => {
                Err(unsupported("protection data needs a time tag"))
            }
        };
    };
    let cp56 = tag_size(iec104, time)? == TimeSize::Seven;
    let pick = |with_cp56: u8, with_cp24: u8| Ok(if cp56 { with_cp56 } else { with_cp24 });
    match data {
        Data::Single(_) => pick(30, 2),
        Data::Double(_) => pick(31, 4),
        Data::StepPosition(_) => pick(32, 6),
        Data::Bitstring(_) => pick(33, 8),
        Data::Normalized(d) if d.quality.is_some() => pick(34, 10),
        Data::Normalized(_) => Err(unsupported(
            "normalized data without quality has no time tag",
        )),
        Data::Scaled(_) => pick(35, 12),
        Data::Floating(_) => pick(36, 14),
        Data::BinaryCounter(_) => pick(37, 16),
        Data::Protection(_) => pick(38, 17),
        Data::ProtectionStart(_) => pick(39, 18),
        Data::ProtectionCommand(_) => pick(40, 19),
        Data::Status(_) => Err(unsupported("status data has no time tag")),
    }
}

fn command_type_id(iec104: bool, command: &Command, time: Option<&Time>) -> Result<u8, AsduError> {
    let base = match command {
        Command::Single(_) => 45,
        Command::Double(_) => 46,
        Command::Regulating(_) => 47,
        Command::Normalized(_) => 48,
        Command::Scaled(_) => 49,
        Command::Floating(_) => 50,
        Command::Bitstring(_) => 51,
    };
    match time {
        None => Ok(base),
        Some(_) if !iec104 => Err(unsupported("commands carry no time tag in 101")),
        // 58..=64 are 45..=51 with a CP56 time tag.
        Some(time) => tag_size(true, time).map(|_| base + 13),
    }
}

fn plan(codec: &AsduCodec, msg: &Msg) -> Result<Plan, AsduError> {
    let iec104 = codec.profile.iec104;
    let plan = |type_id: u8, cause: u8, originator_address, asdu_address, io_address, time| {
        // Every type id picked below exists in the profile; a miss is a table bug,
        // reported as an unsupported message rather than a panic.
        let info = lookup(iec104, type_id).ok_or(unsupported("type id missing from table"))?;
        Ok::<_, AsduError>(Plan {
            type_id,
            info,
            cause,
            originator_address,
            asdu_address,
            io_address,
            time,
            packable: matches!(msg, Msg::Data(_)),
        })
    };
    match msg {
        Msg::Data(m) => plan(
            data_type_id(iec104, &m.data, m.time.as_ref())?,
            cause_octet(m.cause.to_u8(), false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            m.io_address,
            m.time,
        ),
        Msg::Command(m) => plan(
            command_type_id(iec104, &m.command, m.time.as_ref())?,
            cause_octet(m.cause.to_u8(), m.is_negative_confirm, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            m.io_address,
            m.time,
        ),
        Msg::Initialization(m) => plan(
            70,
            // INITIALIZED: the element carries the cause of initialisation.
            cause_octet(4, false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            0,
            None,
        ),
        Msg::Interrogation(m) => plan(
            100,
            cause_octet(m.cause.to_u8(), m.is_negative_confirm, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            0,
            None,
        ),
        Msg::CounterInterrogation(m) => plan(
            101,
            cause_octet(m.cause.to_u8(), m.is_negative_confirm, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            0,
            None,
        ),
        Msg::Read(m) => plan(
            102,
            cause_octet(m.cause.to_u8(), false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            m.io_address,
            None,
        ),
        Msg::ClockSync(m) => plan(
            103,
            cause_octet(m.cause.to_u8(), m.is_negative_confirm, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            0,
            None,
        ),
        Msg::Test(m) => {
            let time = if iec104 {
                let time = m.time.ok_or(unsupported("104 test message needs a time"))?;
                tag_size(true, &time)?;
                Some(time)
            } else {
                None
            };
            plan(
                if iec104 { 107 } else { 104 },
                cause_octet(m.cause.to_u8(), false, m.is_test)?,
                m.originator_address,
                m.asdu_address,
                0,
                time,
            )
        }
        Msg::Reset(m) => plan(
            105,
            cause_octet(m.cause.to_u8(), false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            0,
            None,
        ),
        Msg::Delay(m) => {
            if iec104 {
                return Err(unsupported("delay acquisition is 101 only"));
            }
            plan(
                106,
                cause_octet(m.cause.to_u8(), false, m.is_test)?,
                m.originator_address,
                m.asdu_address,
                0,
                None,
            )
        }
        Msg::Parameter(m) => plan(
            match m.parameter {
                Parameter::Normalized(_) => 110,
                Parameter::Scaled(_) => 111,
                Parameter::Floating(_) => 112,
            },
            cause_octet(m.cause.to_u8(), false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            m.io_address,
            None,
        ),
        Msg::ParameterActivation(m) => plan(
            113,
            cause_octet(m.cause.to_u8(), false, m.is_test)?,
            m.originator_address,
            m.asdu_address,
            m.io_address,
            None,
        ),
    }
}

/// Refuses `value` if it does not fit `size` octets.
fn check_uint(value: u32, size: usize, field: &'static str) -> Result<(), AsduError> {
    if size < 4 && value >> (8 * size) != 0 {
        return Err(out_of_range(field));
    }
    Ok(())
}

/// Appends little-endian `value` in `size` octets, refusing values that do not fit.
fn put_uint(
    out: &mut Vec<u8>,
    value: u32,
    size: usize,
    field: &'static str,
) -> Result<(), AsduError> {
    check_uint(value, size, field)?;
    out.extend_from_slice(&value.to_le_bytes()[..size]);
    Ok(())
}

/// Appends the element octets of `msg` (as `plan` typed it).
fn put_element(out: &mut Vec<u8>, msg: &Msg, plan: &Plan) -> Result<(), AsduError> {
    match msg {
        Msg::Data(m) => put_data(out, &m.data)?,
        Msg::Command(m) => put_command(out, &m.command)?,
        Msg::Initialization(m) => {
            let cause = m.cause.to_u8();
            if cause > 0x7F {
                return Err(out_of_range("cause of initialization"));
            }
            out.push(cause | if m.param_change { 0x80 } else { 0 });
        }
        Msg::Interrogation(m) => out.push(m.request),
        Msg::CounterInterrogation(m) => {
            if m.request > 0x3F {
                return Err(out_of_range("counter interrogation request"));
            }
            out.push(m.freeze.to_u8() << 6 | m.request);
        }
        Msg::Read(_) => {}
        Msg::ClockSync(m) => {
            if m.time.size != TimeSize::Seven {
                return Err(unsupported(
                    "clock synchronisation needs a time of size SEVEN",
                ));
            }
            put_time(out, &m.time, TimeSize::Seven)?;
        }
        Msg::Test(m) => {
            if plan.info.element == Element::CounterTest {
                out.extend_from_slice(&m.counter.to_le_bytes());
            } else {
                // Fixed test bit pattern of C_TS_NA_1, as hat writes it.
                out.extend_from_slice(&[0xAA, 0x55]);
            }
        }
        Msg::Reset(m) => out.push(m.qualifier),
        Msg::Delay(m) => out.extend_from_slice(&m.time.to_le_bytes()),
        Msg::Parameter(m) => match &m.parameter {
            Parameter::Normalized(p) => {
                out.extend_from_slice(&normalized(p.value)?);
                out.push(p.qualifier);
            }
            Parameter::Scaled(p) => {
                out.extend_from_slice(&p.value.0.to_le_bytes());
                out.push(p.qualifier);
            }
            Parameter::Floating(p) => {
                out.extend_from_slice(&p.value.0.to_le_bytes());
                out.push(p.qualifier);
            }
        },
        Msg::ParameterActivation(m) => out.push(m.qualifier),
    }
    Ok(())
}

/// Appends one information object: address, element, time tag.
fn put_object(
    codec: &AsduCodec,
    out: &mut Vec<u8>,
    msg: &Msg,
    plan: &Plan,
) -> Result<(), AsduError> {
    let sizes = codec.profile.sizes;
    put_uint(
        out,
        plan.io_address,
        sizes.io_address.octets(),
        "io_address",
    )?;
    put_element(out, msg, plan)?;
    if let (Some(size), Some(time)) = (plan.info.time, &plan.time) {
        put_time(out, time, size)?;
    }
    Ok(())
}

/// Octets of one object of `plan`'s type.
fn object_size(codec: &AsduCodec, plan: &Plan) -> usize {
    codec.profile.sizes.io_address.octets()
        + plan.info.element.size()
        + plan.info.time.map_or(0, TimeSize::octets)
}

pub(super) fn encode_each(
    codec: &AsduCodec,
    msgs: &[Msg],
    mut emit: impl FnMut(&[u8]),
) -> Result<(), AsduError> {
    let sizes = codec.profile.sizes;
    let io_address_size = sizes.io_address.octets();
    let header_size = 2 + sizes.cause.octets() + sizes.asdu_address.octets();
    // One buffer for every ASDU of the call; nothing is written past max_asdu_size, so
    // it never grows past its first capacity.
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_ASDU_SIZE_LIMIT);
    let mut next = 0;
    while next < msgs.len() {
        let first = plan(codec, &msgs[next])?;
        let object_size = object_size(codec, &first);
        let element_size = first.info.element.size();
        if header_size + object_size > codec.max_asdu_size {
            return Err(out_of_range("message larger than the largest ASDU"));
        }

        // Choose the group first: as many following messages as share the header and
        // fit, in the layout they will take (a sequence while the addresses are
        // consecutive and there is no time tag, one address per object otherwise).
        let mut count = 1;
        let mut sequence = first.info.time.is_none();
        let mut last_address = first.io_address;
        if first.packable {
            while next + count < msgs.len() && count < MAX_OBJECTS_PER_ASDU {
                let other = plan(codec, &msgs[next + count])?;
                if !first.same_asdu(&other) {
                    break;
                }
                let still_sequence =
                    sequence && last_address.checked_add(1) == Some(other.io_address);
                let size_after = if still_sequence {
                    header_size + io_address_size + (count + 1) * element_size
                } else {
                    header_size + (count + 1) * object_size
                };
                if size_after > codec.max_asdu_size {
                    break;
                }
                sequence = still_sequence;
                last_address = other.io_address;
                count += 1;
            }
        }
        let sequence = sequence && count > 1;

        buf.clear();
        buf.push(first.type_id);
        // count <= 127 (MAX_OBJECTS_PER_ASDU): it fits the 7 bits of the qualifier.
        buf.push(count as u8 | if sequence { 0x80 } else { 0 });
        buf.push(first.cause);
        if sizes.cause == CauseSize::Two {
            buf.push(first.originator_address);
        }
        put_uint(
            &mut buf,
            u32::from(first.asdu_address),
            sizes.asdu_address.octets(),
            "asdu_address",
        )?;
        if sequence {
            put_uint(&mut buf, first.io_address, io_address_size, "io_address")?;
            for msg in &msgs[next..next + count] {
                let plan = plan(codec, msg)?;
                check_uint(plan.io_address, io_address_size, "io_address")?;
                put_element(&mut buf, msg, &plan)?;
            }
        } else {
            for msg in &msgs[next..next + count] {
                let plan = plan(codec, msg)?;
                put_object(codec, &mut buf, msg, &plan)?;
            }
        }
        emit(&buf);
        next += count;
    }
    Ok(())
}
