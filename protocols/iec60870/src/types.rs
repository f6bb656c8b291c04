//! The data model of IEC 60870-5-101/104 messages, named as hat-drivers names them.
//!
//! Every type mirrors a class of hat-drivers (`hat.drivers.iec101.common`,
//! `hat.drivers.iec104.common` and `hat.drivers.iec60870.encodings`): hat's class and
//! member names in Rust CamelCase, field names exactly hat's. The codec in
//! [`crate::asdu`] turns these messages into ASDUs and back; nothing here knows about
//! bytes except the wire values of the enums (`to_u8`/`from_u8`).

mod cause;
mod msg;
mod time;
mod value;

pub use cause::{
    ActivationCause, ClockSyncCause, CommandCause, DataCause, DelayCause, InitializationCause,
    ParameterActivationCause, ParameterCause, ReadCause,
};
pub use msg::{
    ClockSyncMsg, CommandMsg, CounterInterrogationMsg, DataMsg, DelayMsg, InitializationMsg,
    InterrogationMsg, Msg, ParameterActivationMsg, ParameterMsg, ReadMsg, ResetMsg, TestMsg,
};
pub use time::{Time, TimeSize};
pub use value::{
    BinaryCounterData, BinaryCounterValue, BitstringCommand, BitstringData, BitstringValue,
    Command, CounterQuality, Data, DoubleCommand, DoubleData, DoubleValue, FloatingCommand,
    FloatingData, FloatingParameter, FloatingValue, FreezeCode, IndicationQuality,
    MeasurementQuality, NormalizedCommand, NormalizedData, NormalizedParameter, NormalizedValue,
    Parameter, ProtectionCommandData, ProtectionCommandValue, ProtectionData, ProtectionQuality,
    ProtectionStartData, ProtectionStartValue, ProtectionValue, Quality, RegulatingCommand,
    RegulatingValue, ScaledCommand, ScaledData, ScaledParameter, ScaledValue, SingleCommand,
    SingleData, SingleValue, StatusData, StatusValue, StepPositionData, StepPositionValue,
};

/// Originator address (hat's `OriginatorAddress`): 0 to 255, 0 when not available. Only
/// carried when the cause field is two octets.
pub type OriginatorAddress = u8;

/// Common address of ASDU (hat's `AsduAddress`): 0 to 255 or 0 to 65535 by field size.
pub type AsduAddress = u16;

/// Information object address (hat's `IoAddress`): up to 255, 65535 or 16777215 by
/// field size.
pub type IoAddress = u32;
