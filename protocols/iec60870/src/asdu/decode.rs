//! ASDU octets to messages.
//!
//! The whole length is checked against the variable structure qualifier before any
//! element is read, so the element readers index fixed-size slices that exist.

use super::table::{lookup, Element, TypeInfo};
use super::{AsduCodec, AsduError};
use crate::types::{
    ActivationCause, BinaryCounterData, BinaryCounterValue, BitstringCommand, BitstringData,
    BitstringValue, ClockSyncCause, ClockSyncMsg, Command, CommandCause, CommandMsg,
    CounterInterrogationMsg, CounterQuality, Data, DataCause, DataMsg, DelayCause, DelayMsg,
    DoubleCommand, DoubleData, DoubleValue, FloatingCommand, FloatingData, FloatingParameter,
    FloatingValue, FreezeCode, IndicationQuality, InitializationCause, InitializationMsg,
    InterrogationMsg, MeasurementQuality, Msg, NormalizedCommand, NormalizedData,
    NormalizedParameter, NormalizedValue, Parameter, ParameterActivationCause,
    ParameterActivationMsg, ParameterCause, ParameterMsg, ProtectionCommandData,
    ProtectionCommandValue, ProtectionData, ProtectionQuality, ProtectionStartData,
    ProtectionStartValue, ProtectionValue, ReadCause, ReadMsg, RegulatingCommand, RegulatingValue,
    ResetMsg, ScaledCommand, ScaledData, ScaledParameter, ScaledValue, SingleCommand, SingleData,
    SingleValue, StatusData, StatusValue, StepPositionData, StepPositionValue, TestMsg, Time,
    TimeSize,
};

/// The data unit identifier fields every message of the ASDU shares.
#[derive(Debug, Clone, Copy)]
struct Header {
    type_id: u8,
    cause: u8,
    is_negative_confirm: bool,
    is_test: bool,
    originator_address: u8,
    asdu_address: u16,
}

/// Little-endian unsigned integer of `bytes` (at most 4 octets).
fn le_uint(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

fn le_u16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

fn le_i16(bytes: &[u8]) -> i16 {
    i16::from_le_bytes([bytes[0], bytes[1]])
}

fn le_4(bytes: &[u8]) -> [u8; 4] {
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

pub(super) fn decode_into(
    codec: &AsduCodec,
    asdu: &[u8],
    out: &mut Vec<Msg>,
) -> Result<(), AsduError> {
    let sizes = codec.profile.sizes;
    let cause_size = sizes.cause.octets();
    let asdu_address_size = sizes.asdu_address.octets();
    let io_address_size = sizes.io_address.octets();
    let header_size = 2 + cause_size + asdu_address_size;
    if asdu.len() < header_size {
        return Err(AsduError::Truncated {
            needed: header_size,
            available: asdu.len(),
        });
    }
    let type_id = asdu[0];
    let info = lookup(codec.profile.iec104, type_id).ok_or(AsduError::UnknownType { type_id })?;
    let count = usize::from(asdu[1] & 0x7F);
    let is_sequence = asdu[1] & 0x80 != 0;
    if count == 0 {
        return Err(AsduError::NoObjects { type_id });
    }
    let cause_octet = asdu[2];
    let header = Header {
        type_id,
        cause: cause_octet & 0x3F,
        is_negative_confirm: cause_octet & 0x40 != 0,
        is_test: cause_octet & 0x80 != 0,
        originator_address: if cause_size == 2 { asdu[3] } else { 0 },
        asdu_address: le_uint(&asdu[2 + cause_size..header_size]) as u16,
    };

    let (objects, elements_per_object) = if is_sequence { (1, count) } else { (count, 1) };
    let element_size = info.element.size();
    let time_size = info.time.map_or(0, TimeSize::octets);
    let object_size = io_address_size + elements_per_object * element_size + time_size;
    let needed = header_size + objects * object_size;
    if asdu.len() < needed {
        return Err(AsduError::Truncated {
            needed,
            available: asdu.len(),
        });
    }
    if asdu.len() > needed {
        return Err(AsduError::TrailingBytes {
            type_id,
            count: asdu.len() - needed,
        });
    }

    if is_sequence {
        // The last element's address must fit the address field, or the sequence could
        // not be sent again.
        let first = le_uint(&asdu[header_size..header_size + io_address_size]);
        // count <= 127: no overflow of a 24-bit address.
        if (first + count as u32 - 1) >> (8 * io_address_size) != 0 {
            return Err(AsduError::InvalidValue {
                type_id,
                field: "sequence running past the largest object address",
            });
        }
    }

    out.reserve(count);
    for object in asdu[header_size..].chunks_exact(object_size) {
        let (address, rest) = object.split_at(io_address_size);
        let io_address = le_uint(address);
        let (elements, time) = rest.split_at(elements_per_object * element_size);
        let time = info.time.map(|size| decode_time(time, size));
        for index in 0..elements_per_object {
            let element = &elements[index * element_size..(index + 1) * element_size];
            // index < 127, so the sum cannot overflow a u32 address of at most 24 bits.
            let address = io_address + index as u32;
            out.push(decode_element(&header, info, address, element, time)?);
        }
    }
    Ok(())
}

/// A time tag of `size` from the first `size.octets()` octets of `bytes`.
pub(super) fn decode_time(bytes: &[u8], size: TimeSize) -> Time {
    let octets = size.octets();
    let has = |n: usize| octets > n;
    Time {
        size,
        milliseconds: le_u16(bytes),
        invalid: has(2).then(|| bytes[2] & 0x80 != 0),
        substituted: has(2).then(|| bytes[2] & 0x40 != 0),
        minutes: has(2).then(|| bytes[2] & 0x3F),
        summer_time: has(3).then(|| bytes[3] & 0x80 != 0),
        hours: has(3).then(|| bytes[3] & 0x1F),
        day_of_week: has(4).then(|| bytes[4] >> 5),
        day_of_month: has(4).then(|| bytes[4] & 0x1F),
        months: has(4).then(|| bytes[5] & 0x0F),
        years: has(4).then(|| bytes[6] & 0x7F),
    }
}

fn indication_quality(octet: u8) -> IndicationQuality {
    IndicationQuality {
        invalid: octet & 0x80 != 0,
        not_topical: octet & 0x40 != 0,
        substituted: octet & 0x20 != 0,
        blocked: octet & 0x10 != 0,
    }
}

fn measurement_quality(octet: u8) -> MeasurementQuality {
    MeasurementQuality {
        invalid: octet & 0x80 != 0,
        not_topical: octet & 0x40 != 0,
        substituted: octet & 0x20 != 0,
        blocked: octet & 0x10 != 0,
        overflow: octet & 0x01 != 0,
    }
}

fn protection_quality(octet: u8) -> ProtectionQuality {
    ProtectionQuality {
        invalid: octet & 0x80 != 0,
        not_topical: octet & 0x40 != 0,
        substituted: octet & 0x20 != 0,
        blocked: octet & 0x10 != 0,
        time_invalid: octet & 0x08 != 0,
    }
}

/// NVA: hat divides by 0x7FFF (so -32768 reads as slightly below -1.0).
fn normalized(bytes: &[u8]) -> NormalizedValue {
    NormalizedValue((f64::from(le_i16(bytes)) / 32767.0) as f32)
}

fn floating(bytes: &[u8]) -> FloatingValue {
    FloatingValue(f32::from_le_bytes(le_4(bytes)))
}

fn step_position(octet: u8) -> StepPositionValue {
    // Sign-extend the 7-bit two's complement value.
    StepPositionValue {
        value: ((octet << 1) as i8) >> 1,
        transient: octet & 0x80 != 0,
    }
}

fn status(bytes: &[u8]) -> StatusValue {
    let bits = |lo: u8, hi: u8| {
        let word = u16::from_le_bytes([lo, hi]);
        std::array::from_fn(|i| word & (1 << i) != 0)
    };
    StatusValue {
        value: bits(bytes[0], bytes[1]),
        change: bits(bytes[2], bytes[3]),
    }
}

fn data_msg(h: &Header, io_address: u32, data: Data, time: Option<Time>) -> Msg {
    Msg::Data(DataMsg {
        is_test: h.is_test,
        originator_address: h.originator_address,
        asdu_address: h.asdu_address,
        io_address,
        data,
        time,
        cause: DataCause::from_u8(h.cause),
    })
}

fn command_msg(h: &Header, io_address: u32, command: Command, time: Option<Time>) -> Msg {
    Msg::Command(CommandMsg {
        is_test: h.is_test,
        originator_address: h.originator_address,
        asdu_address: h.asdu_address,
        io_address,
        command,
        is_negative_confirm: h.is_negative_confirm,
        time,
        cause: CommandCause::from_u8(h.cause),
    })
}

fn parameter_msg(h: &Header, io_address: u32, parameter: Parameter) -> Msg {
    Msg::Parameter(ParameterMsg {
        is_test: h.is_test,
        originator_address: h.originator_address,
        asdu_address: h.asdu_address,
        io_address,
        parameter,
        cause: ParameterCause::from_u8(h.cause),
    })
}

fn decode_element(
    h: &Header,
    info: TypeInfo,
    io_address: u32,
    e: &[u8],
    time: Option<Time>,
) -> Result<Msg, AsduError> {
    let invalid = |field| AsduError::InvalidValue {
        type_id: h.type_id,
        field,
    };
    let select = |octet: u8| octet & 0x80 != 0;
    let qualifier = |octet: u8| (octet >> 2) & 0x1F;
    let msg = match info.element {
        Element::Single => data_msg(
            h,
            io_address,
            Data::Single(SingleData {
                value: SingleValue::from_bit(e[0]),
                quality: indication_quality(e[0]),
            }),
            time,
        ),
        Element::Double => data_msg(
            h,
            io_address,
            Data::Double(DoubleData {
                value: DoubleValue::from_bits(e[0]),
                quality: indication_quality(e[0]),
            }),
            time,
        ),
        Element::StepPosition => data_msg(
            h,
            io_address,
            Data::StepPosition(StepPositionData {
                value: step_position(e[0]),
                quality: measurement_quality(e[1]),
            }),
            time,
        ),
        Element::Bitstring => data_msg(
            h,
            io_address,
            Data::Bitstring(BitstringData {
                value: BitstringValue(le_4(e)),
                quality: measurement_quality(e[4]),
            }),
            time,
        ),
        Element::Normalized => data_msg(
            h,
            io_address,
            Data::Normalized(NormalizedData {
                value: normalized(e),
                quality: Some(measurement_quality(e[2])),
            }),
            time,
        ),
        Element::NormalizedNoQuality => data_msg(
            h,
            io_address,
            Data::Normalized(NormalizedData {
                value: normalized(e),
                quality: None,
            }),
            time,
        ),
        Element::Scaled => data_msg(
            h,
            io_address,
            Data::Scaled(ScaledData {
                value: ScaledValue(le_i16(e)),
                quality: measurement_quality(e[2]),
            }),
            time,
        ),
        Element::Floating => data_msg(
            h,
            io_address,
            Data::Floating(FloatingData {
                value: floating(e),
                quality: measurement_quality(e[4]),
            }),
            time,
        ),
        Element::BinaryCounter => data_msg(
            h,
            io_address,
            Data::BinaryCounter(BinaryCounterData {
                value: BinaryCounterValue(i32::from_le_bytes(le_4(e))),
                quality: CounterQuality {
                    invalid: e[4] & 0x80 != 0,
                    adjusted: e[4] & 0x40 != 0,
                    overflow: e[4] & 0x20 != 0,
                    sequence: e[4] & 0x1F,
                },
            }),
            time,
        ),
        Element::Protection => data_msg(
            h,
            io_address,
            Data::Protection(ProtectionData {
                value: ProtectionValue::from_bits(e[0]).ok_or(invalid("protection event state"))?,
                quality: protection_quality(e[0]),
                elapsed_time: le_u16(&e[1..]),
            }),
            time,
        ),
        Element::ProtectionStart => data_msg(
            h,
            io_address,
            Data::ProtectionStart(ProtectionStartData {
                value: ProtectionStartValue {
                    general: e[0] & 0x01 != 0,
                    l1: e[0] & 0x02 != 0,
                    l2: e[0] & 0x04 != 0,
                    l3: e[0] & 0x08 != 0,
                    ie: e[0] & 0x10 != 0,
                    reverse: e[0] & 0x20 != 0,
                },
                quality: protection_quality(e[1]),
                duration_time: le_u16(&e[2..]),
            }),
            time,
        ),
        Element::ProtectionCommand => data_msg(
            h,
            io_address,
            Data::ProtectionCommand(ProtectionCommandData {
                value: ProtectionCommandValue {
                    general: e[0] & 0x01 != 0,
                    l1: e[0] & 0x02 != 0,
                    l2: e[0] & 0x04 != 0,
                    l3: e[0] & 0x08 != 0,
                },
                quality: protection_quality(e[1]),
                operating_time: le_u16(&e[2..]),
            }),
            time,
        ),
        Element::Status => data_msg(
            h,
            io_address,
            Data::Status(StatusData {
                value: status(e),
                quality: measurement_quality(e[4]),
            }),
            time,
        ),
        Element::SingleCommand => command_msg(
            h,
            io_address,
            Command::Single(SingleCommand {
                value: SingleValue::from_bit(e[0]),
                select: select(e[0]),
                qualifier: qualifier(e[0]),
            }),
            time,
        ),
        Element::DoubleCommand => command_msg(
            h,
            io_address,
            Command::Double(DoubleCommand {
                value: DoubleValue::from_bits(e[0]),
                select: select(e[0]),
                qualifier: qualifier(e[0]),
            }),
            time,
        ),
        Element::RegulatingCommand => command_msg(
            h,
            io_address,
            Command::Regulating(RegulatingCommand {
                value: RegulatingValue::from_bits(e[0]).ok_or(invalid("regulating step"))?,
                select: select(e[0]),
                qualifier: qualifier(e[0]),
            }),
            time,
        ),
        Element::NormalizedCommand => command_msg(
            h,
            io_address,
            Command::Normalized(NormalizedCommand {
                value: normalized(e),
                select: select(e[2]),
            }),
            time,
        ),
        Element::ScaledCommand => command_msg(
            h,
            io_address,
            Command::Scaled(ScaledCommand {
                value: ScaledValue(le_i16(e)),
                select: select(e[2]),
            }),
            time,
        ),
        Element::FloatingCommand => command_msg(
            h,
            io_address,
            Command::Floating(FloatingCommand {
                value: floating(e),
                select: select(e[4]),
            }),
            time,
        ),
        Element::BitstringCommand => command_msg(
            h,
            io_address,
            Command::Bitstring(BitstringCommand {
                value: BitstringValue(le_4(e)),
            }),
            time,
        ),
        Element::Initialization => Msg::Initialization(InitializationMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            param_change: e[0] & 0x80 != 0,
            cause: InitializationCause::from_u8(e[0] & 0x7F),
        }),
        Element::Interrogation => Msg::Interrogation(InterrogationMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            request: e[0],
            is_negative_confirm: h.is_negative_confirm,
            cause: CommandCause::from_u8(h.cause),
        }),
        Element::CounterInterrogation => Msg::CounterInterrogation(CounterInterrogationMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            request: e[0] & 0x3F,
            freeze: FreezeCode::from_bits(e[0] >> 6),
            is_negative_confirm: h.is_negative_confirm,
            cause: CommandCause::from_u8(h.cause),
        }),
        Element::Read => Msg::Read(ReadMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            io_address,
            cause: ReadCause::from_u8(h.cause),
        }),
        Element::ClockSync => Msg::ClockSync(ClockSyncMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            time: decode_time(e, TimeSize::Seven),
            is_negative_confirm: h.is_negative_confirm,
            cause: ClockSyncCause::from_u8(h.cause),
        }),
        Element::FixedTest | Element::CounterTest => Msg::Test(TestMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            counter: if info.element == Element::CounterTest {
                le_u16(e)
            } else {
                0
            },
            time,
            cause: ActivationCause::from_u8(h.cause),
        }),
        Element::Reset => Msg::Reset(ResetMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            qualifier: e[0],
            cause: ActivationCause::from_u8(h.cause),
        }),
        Element::Delay => Msg::Delay(DelayMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            time: le_u16(e),
            cause: DelayCause::from_u8(h.cause),
        }),
        Element::NormalizedParameter => parameter_msg(
            h,
            io_address,
            Parameter::Normalized(NormalizedParameter {
                value: normalized(e),
                qualifier: e[2],
            }),
        ),
        Element::ScaledParameter => parameter_msg(
            h,
            io_address,
            Parameter::Scaled(ScaledParameter {
                value: ScaledValue(le_i16(e)),
                qualifier: e[2],
            }),
        ),
        Element::FloatingParameter => parameter_msg(
            h,
            io_address,
            Parameter::Floating(FloatingParameter {
                value: floating(e),
                qualifier: e[4],
            }),
        ),
        Element::ParameterActivation => Msg::ParameterActivation(ParameterActivationMsg {
            is_test: h.is_test,
            originator_address: h.originator_address,
            asdu_address: h.asdu_address,
            io_address,
            qualifier: e[0],
            cause: ParameterActivationCause::from_u8(h.cause),
        }),
    };
    Ok(msg)
}
