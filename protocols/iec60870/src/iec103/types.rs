//! The data model of IEC 60870-5-103 ASDUs, named as hat-drivers names it
//! (`hat.drivers.iec60870.encodings.iec103.common`).

use crate::types::Time;

/// Defines a `u8`-coded enum with `to_u8` / `from_u8`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The wire value.
            pub const fn to_u8(self) -> u8 {
                match self {
                    $(Self::$variant => $value,)+
                }
            }

            /// The variant of a wire value, `None` for a value hat does not name.
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

        }
    };
}

wire_enum! {
    /// ASDU type identification of 103 (hat's `AsduType`).
    AsduType {
        /// 1: time-tagged message.
        TimeTaggedMessage = 1,
        /// 2: time-tagged message with relative time.
        TimeTaggedMessageWithRelativeTime = 2,
        /// 3: measurands I.
        Measurands1 = 3,
        /// 4: time-tagged measurands with relative time.
        TimeTaggedMeasurandsWithRelativeTime = 4,
        /// 5: identification.
        Identification = 5,
        /// 6: time synchronisation.
        TimeSynchronization = 6,
        /// 7: general interrogation.
        GeneralInterrogation = 7,
        /// 8: general interrogation termination.
        GeneralInterrogationTermination = 8,
        /// 9: measurands II.
        Measurands2 = 9,
        /// 10: generic data.
        GenericData = 10,
        /// 11: generic identification.
        GenericIdentification = 11,
        /// 20: general command.
        GeneralCommand = 20,
        /// 21: generic command.
        GenericCommand = 21,
        /// 23: list of recorded disturbances.
        ListOfRecordedDisturbances = 23,
        /// 24: order for disturbance data transmission.
        OrderForDisturbanceDataTransmission = 24,
        /// 25: acknowledgement for disturbance data transmission.
        AcknowledgementForDisturbanceDataTransmission = 25,
        /// 26: ready for transmission of disturbance data.
        ReadyForTransmissionOfDisturbanceData = 26,
        /// 27: ready for transmission of a channel.
        ReadyForTransmissionOfAChannel = 27,
        /// 28: ready for transmission of tags.
        ReadyForTransmissionOfTags = 28,
        /// 29: transmission of tags.
        TransmissionOfTags = 29,
        /// 30: transmission of disturbance values.
        TransmissionOfDisturbanceValues = 30,
        /// 31: end of transmission.
        EndOfTransmission = 31,
    }
}

wire_enum! {
    /// A cause of transmission hat names (hat's `Cause`).
    KnownCause {
        /// 1.
        Spontaneous = 1,
        /// 2.
        Cyclic = 2,
        /// 3.
        ResetFrameCountBit = 3,
        /// 4.
        ResetCommunicationUnit = 4,
        /// 5.
        StartRestart = 5,
        /// 6.
        PowerOn = 6,
        /// 7.
        TestMode = 7,
        /// 8.
        TimeSynchronization = 8,
        /// 9.
        GeneralInterrogation = 9,
        /// 10.
        TerminationOfGeneralInterrogation = 10,
        /// 11.
        LocalOperation = 11,
        /// 12.
        RemoteOperation = 12,
        /// 20.
        GeneralCommand = 20,
        /// 21.
        GeneralCommandNack = 21,
        /// 31.
        TransmissionOfDisturbanceData = 31,
        /// 40.
        GenericWriteCommand = 40,
        /// 41.
        GenericWriteCommandNack = 41,
        /// 42.
        GenericReadCommand = 42,
        /// 43.
        GenericReadCommandNack = 43,
        /// 44.
        GenericWriteConfirmation = 44,
    }
}

/// Cause of transmission (hat's `Cause | OtherCause`): a named cause or any other octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A cause hat names.
    Known(KnownCause),
    /// Any other value (hat's `OtherCause`), never one [`KnownCause`] names when decoded.
    Other(u8),
}

impl Cause {
    /// The wire octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Known(c) => c.to_u8(),
            Self::Other(v) => v,
        }
    }

    /// The cause of a wire octet: [`Cause::Known`] when hat names it.
    pub const fn from_u8(value: u8) -> Cause {
        match KnownCause::from_u8(value) {
            Some(c) => Self::Known(c),
            None => Self::Other(value),
        }
    }
}

impl KnownCause {
    /// Hat's member name (`SPONTANEOUS`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Spontaneous => "SPONTANEOUS",
            Self::Cyclic => "CYCLIC",
            Self::ResetFrameCountBit => "RESET_FRAME_COUNT_BIT",
            Self::ResetCommunicationUnit => "RESET_COMMUNICATION_UNIT",
            Self::StartRestart => "START_RESTART",
            Self::PowerOn => "POWER_ON",
            Self::TestMode => "TEST_MODE",
            Self::TimeSynchronization => "TIME_SYNCHRONIZATION",
            Self::GeneralInterrogation => "GENERAL_INTERROGATION",
            Self::TerminationOfGeneralInterrogation => "TERMINATION_OF_GENERAL_INTERROGATION",
            Self::LocalOperation => "LOCAL_OPERATION",
            Self::RemoteOperation => "REMOTE_OPERATION",
            Self::GeneralCommand => "GENERAL_COMMAND",
            Self::GeneralCommandNack => "GENERAL_COMMAND_NACK",
            Self::TransmissionOfDisturbanceData => "TRANSMISSION_OF_DISTURBANCE_DATA",
            Self::GenericWriteCommand => "GENERIC_WRITE_COMMAND",
            Self::GenericWriteCommandNack => "GENERIC_WRITE_COMMAND_NACK",
            Self::GenericReadCommand => "GENERIC_READ_COMMAND",
            Self::GenericReadCommandNack => "GENERIC_READ_COMMAND_NACK",
            Self::GenericWriteConfirmation => "GENERIC_WRITE_CONFIRMATION",
        }
    }
}

impl DoubleValue {
    /// Hat's member name (`TRANSIENT`, `OFF`, `ON`, `ERROR`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Transient => "TRANSIENT",
            Self::Off => "OFF",
            Self::On => "ON",
            Self::Error => "ERROR",
        }
    }

    /// The value of hat's member name.
    pub fn from_name(name: &str) -> Option<DoubleValue> {
        [Self::Transient, Self::Off, Self::On, Self::Error]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

impl From<KnownCause> for Cause {
    fn from(c: KnownCause) -> Cause {
        Cause::Known(c)
    }
}

wire_enum! {
    /// Double point value (hat's `DoubleValue`; also `ExtendedDoubleValue`'s values).
    DoubleValue {
        /// 0.
        Transient = 0,
        /// 1.
        Off = 1,
        /// 2.
        On = 2,
        /// 3.
        Error = 3,
    }
}

/// Function type and information number: the information object address of 103
/// (hat's `IoAddress`; on the wire function type first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IoAddress {
    /// Function type, 0 to 255.
    pub function_type: u8,
    /// Information number, 0 to 255.
    pub information_number: u8,
}

/// Generic identification number (hat's `Identification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identification {
    /// Group, 0 to 255.
    pub group_id: u8,
    /// Entry, 0 to 255.
    pub entry_id: u8,
}

/// Measurand with quality (hat's `MeasurandValue`): 13-bit signed fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasurandValue {
    /// OV bit.
    pub overflow: bool,
    /// ER bit.
    pub invalid: bool,
    /// -1.0 to 1.0 (exclusive), in steps of 1/4096.
    pub value: f64,
}

/// Double point with a four octet time and supplementary information (hat's
/// `DoubleWithTimeValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoubleWithTimeValue {
    /// The double point.
    pub value: DoubleValue,
    /// Time of size FOUR.
    pub time: Time,
    /// Supplementary information, 0 to 255 (the return identifier of a command reply).
    pub supplementary: u8,
}

/// Double point with relative time, fault number, four octet time and supplementary
/// information (hat's `DoubleWithRelativeTimeValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoubleWithRelativeTimeValue {
    /// The double point.
    pub value: DoubleValue,
    /// Relative time in milliseconds, 0 to 65535.
    pub relative_time: u16,
    /// Fault number, 0 to 65535.
    pub fault_number: u16,
    /// Time of size FOUR.
    pub time: Time,
    /// Supplementary information.
    pub supplementary: u8,
}

/// Short-circuit location style measurand with relative time (hat's
/// `MeasurandWithRelativeTimeValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasurandWithRelativeTimeValue {
    /// IEEE 754 single.
    pub value: f32,
    /// Relative time, 0 to 65535.
    pub relative_time: u16,
    /// Fault number, 0 to 65535.
    pub fault_number: u16,
    /// Time of size FOUR.
    pub time: Time,
}

wire_enum! {
    /// Generic data description (hat's `Description`, KOD).
    Description {
        /// 0.
        NotSpecified = 0,
        /// 1.
        ActualValue = 1,
        /// 2.
        DefaultValue = 2,
        /// 3.
        Range = 3,
        /// 5.
        Precision = 5,
        /// 6.
        Factor = 6,
        /// 7.
        Reference = 7,
        /// 8.
        Enumeration = 8,
        /// 9.
        Dimension = 9,
        /// 10.
        Description = 10,
        /// 12.
        Password = 12,
        /// 13.
        ReadOnly = 13,
        /// 14.
        WriteOnly = 14,
        /// 19.
        IoAddress = 19,
        /// 20.
        Event = 20,
        /// 21.
        TextArray = 21,
        /// 22.
        ValueArray = 22,
        /// 23.
        Related = 23,
    }
}

wire_enum! {
    /// Disturbance data order type (hat's `OrderType`, TOO).
    OrderType {
        /// 1.
        SelectionOfFault = 1,
        /// 2.
        RequestForDisturbanceData = 2,
        /// 3.
        AbortionOfDisturbanceData = 3,
        /// 8.
        RequestForChannel = 8,
        /// 9.
        AbortionOfChannel = 9,
        /// 16.
        RequestForTags = 16,
        /// 17.
        AbortionOfTags = 17,
        /// 24.
        RequestForListOfRecordedDisturbances = 24,
        /// 32.
        EndOfDisturbanceDataTransmissionWithoutAbortion = 32,
        /// 33.
        EndOfDisturbanceDataTransmissionWithAbortionByControlSystem = 33,
        /// 34.
        EndOfDisturbanceDataTransmissionWithAbortionByTheProtectionEquipment = 34,
        /// 35.
        EndOfChannelTransmissionWithoutAbortion = 35,
        /// 36.
        EndOfChannelTransmissionWithAbortionByControlSystem = 36,
        /// 37.
        EndOfChannelTransmissionWithAbortionByTheProtectionEquipment = 37,
        /// 38.
        EndOfTagTransmissionWithoutAbortion = 38,
        /// 39.
        EndOfTagTransmissionWithAbortionByControlSystem = 39,
        /// 40.
        EndOfTagTransmissionWithAbortionByTheProtectionEquipment = 40,
        /// 64.
        DisturbanceDataTransmittedSuccessfully = 64,
        /// 65.
        DisturbanceDataTransmittedNotSuccessfully = 65,
        /// 66.
        ChannelTransmittedSuccessfully = 66,
        /// 67.
        ChannelTransmittedNotSuccessfully = 67,
        /// 68.
        TagsTransmittedSuccessfully = 68,
        /// 69.
        TagsTransmittedNotSuccessfully = 69,
    }
}

wire_enum! {
    /// Disturbance channel (hat's `Channel`, ACC).
    Channel {
        /// 0.
        Global = 0,
        /// 1.
        IL1 = 1,
        /// 2.
        IL2 = 2,
        /// 3.
        IL3 = 3,
        /// 4.
        IN = 4,
        /// 5.
        VL1e = 5,
        /// 6.
        VL2e = 6,
        /// 7.
        VL3e = 7,
        /// 8.
        VEn = 8,
    }
}

wire_enum! {
    /// Generic data type (hat's `ValueType`, GDD data type).
    ValueType {
        /// 0.
        None = 0,
        /// 1.
        Text = 1,
        /// 2.
        Bitstring = 2,
        /// 3.
        UInt = 3,
        /// 4.
        Int = 4,
        /// 5.
        UFixed = 5,
        /// 6.
        Fixed = 6,
        /// 7.
        Real32 = 7,
        /// 8.
        Real64 = 8,
        /// 9.
        Double = 9,
        /// 10.
        Single = 10,
        /// 11.
        ExtendedDouble = 11,
        /// 12.
        Measurand = 12,
        /// 14.
        Time = 14,
        /// 15.
        Identification = 15,
        /// 16.
        RelativeTime = 16,
        /// 17.
        IoAddress = 17,
        /// 18.
        DoubleWithTime = 18,
        /// 19.
        DoubleWithRelativeTime = 19,
        /// 20.
        MeasurandWithRelativeTime = 20,
        /// 21.
        TextNumber = 21,
        /// 22.
        Reply = 22,
        /// 23.
        Array = 23,
        /// 24.
        Index = 24,
    }
}

wire_enum! {
    /// Generic reply (hat's `ReplyValue`).
    ReplyValue {
        /// 0.
        Ack = 0,
        /// 1.
        InvalidIdentification = 1,
        /// 2.
        DataNotExists = 2,
        /// 3.
        DataNotAvailable = 3,
        /// 4.
        VerifyError = 4,
        /// 5.
        OutOfRange = 5,
        /// 6.
        EntryToLarge = 6,
        /// 7.
        TooManyCommands = 7,
        /// 8.
        EntryReadOnly = 8,
        /// 9.
        PasswordProtected = 9,
        /// 10.
        InProgress = 10,
        /// 11.
        FollowingDescription = 11,
    }
}

/// A generic data value (hat's `Value`). Integers are limited to eight octets here
/// (hat's Python integers have no limit; no 103 device sends wider ones).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value, no octets.
    None,
    /// Octet string (ASCII text).
    Text(Vec<u8>),
    /// Bits, least significant bit of the first octet first.
    Bitstring(Vec<bool>),
    /// Unsigned integer.
    UInt(u64),
    /// Signed integer.
    Int(i64),
    /// Unsigned fraction 0.0 to 1.0 (exclusive).
    UFixed(f64),
    /// Signed fraction -1.0 to 1.0 (exclusive).
    Fixed(f64),
    /// IEEE 754 single.
    Real32(f32),
    /// IEEE 754 double.
    Real64(f64),
    /// Double point.
    Double(DoubleValue),
    /// Single point (false OFF, true ON).
    Single(bool),
    /// Extended double point.
    ExtendedDouble(DoubleValue),
    /// Measurand with quality.
    Measurand(MeasurandValue),
    /// Seven octet time.
    Time(Time),
    /// Generic identification number.
    Identification(Identification),
    /// Relative time.
    RelativeTime(u16),
    /// Function type and information number.
    IoAddress(IoAddress),
    /// Double point with time.
    DoubleWithTime(DoubleWithTimeValue),
    /// Double point with relative time.
    DoubleWithRelativeTime(DoubleWithRelativeTimeValue),
    /// Measurand with relative time.
    MeasurandWithRelativeTime(MeasurandWithRelativeTimeValue),
    /// Text number.
    TextNumber(u64),
    /// Generic reply.
    Reply(ReplyValue),
    /// Nested array.
    Array(ArrayValue),
    /// Index.
    Index(u64),
}

impl Value {
    /// The generic data type of the value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::None => ValueType::None,
            Value::Text(_) => ValueType::Text,
            Value::Bitstring(_) => ValueType::Bitstring,
            Value::UInt(_) => ValueType::UInt,
            Value::Int(_) => ValueType::Int,
            Value::UFixed(_) => ValueType::UFixed,
            Value::Fixed(_) => ValueType::Fixed,
            Value::Real32(_) => ValueType::Real32,
            Value::Real64(_) => ValueType::Real64,
            Value::Double(_) => ValueType::Double,
            Value::Single(_) => ValueType::Single,
            Value::ExtendedDouble(_) => ValueType::ExtendedDouble,
            Value::Measurand(_) => ValueType::Measurand,
            Value::Time(_) => ValueType::Time,
            Value::Identification(_) => ValueType::Identification,
            Value::RelativeTime(_) => ValueType::RelativeTime,
            Value::IoAddress(_) => ValueType::IoAddress,
            Value::DoubleWithTime(_) => ValueType::DoubleWithTime,
            Value::DoubleWithRelativeTime(_) => ValueType::DoubleWithRelativeTime,
            Value::MeasurandWithRelativeTime(_) => ValueType::MeasurandWithRelativeTime,
            Value::TextNumber(_) => ValueType::TextNumber,
            Value::Reply(_) => ValueType::Reply,
            Value::Array(_) => ValueType::Array,
            Value::Index(_) => ValueType::Index,
        }
    }
}

/// Array of generic values of one type (hat's `ArrayValue`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayValue {
    /// The type of every value.
    pub value_type: ValueType,
    /// More elements follow in another ASDU.
    pub more_follows: bool,
    /// The values, at most 127.
    pub values: Vec<Value>,
}

/// Description and values of one generic data entry (hat's `DescriptiveData`).
#[derive(Debug, Clone, PartialEq)]
pub struct DescriptiveData {
    /// Kind of description.
    pub description: Description,
    /// The values.
    pub value: ArrayValue,
}

/// One information element (hat's `IoElement_<TYPE>` classes); the variant is the ASDU
/// type it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum IoElement {
    /// Type 1.
    TimeTaggedMessage(DoubleWithTimeValue),
    /// Type 2.
    TimeTaggedMessageWithRelativeTime(DoubleWithRelativeTimeValue),
    /// Type 3, one per measurand of the sequence.
    Measurands1(MeasurandValue),
    /// Type 4.
    TimeTaggedMeasurandsWithRelativeTime(MeasurandWithRelativeTimeValue),
    /// Type 5.
    Identification {
        /// Compatibility level.
        compatibility: u8,
        /// Manufacturer, eight octets.
        value: [u8; 8],
        /// Software identification, four octets.
        software: [u8; 4],
    },
    /// Type 6: seven octet time.
    TimeSynchronization(Time),
    /// Type 7: scan number.
    GeneralInterrogation(u8),
    /// Type 8: scan number.
    GeneralInterrogationTermination(u8),
    /// Type 9, one per measurand of the sequence.
    Measurands2(MeasurandValue),
    /// Type 10.
    GenericData {
        /// Return identifier.
        return_identifier: u8,
        /// Counter bit of NGD.
        counter: bool,
        /// More-follows bit of NGD.
        more_follows: bool,
        /// Entries, at most 63.
        data: Vec<(Identification, DescriptiveData)>,
    },
    /// Type 11.
    GenericIdentification {
        /// Return identifier.
        return_identifier: u8,
        /// Identification number.
        identification: Identification,
        /// Counter bit of NDE.
        counter: bool,
        /// More-follows bit of NDE.
        more_follows: bool,
        /// Entries, at most 63.
        data: Vec<DescriptiveData>,
    },
    /// Type 20.
    GeneralCommand {
        /// Commanded state.
        value: DoubleValue,
        /// Return identifier.
        return_identifier: u8,
    },
    /// Type 21.
    GenericCommand {
        /// Return identifier.
        return_identifier: u8,
        /// Entries, at most 255.
        data: Vec<(Identification, Description)>,
    },
    /// Type 23, one per disturbance of the sequence.
    ListOfRecordedDisturbances {
        /// Fault number.
        fault_number: u16,
        /// TRIP bit of SOF.
        trip: bool,
        /// TRANSMITTED bit of SOF.
        transmitted: bool,
        /// TEST bit of SOF.
        test: bool,
        /// OTHER bit of SOF.
        other: bool,
        /// Seven octet time.
        time: Time,
    },
    /// Type 24.
    OrderForDisturbanceDataTransmission(DisturbanceOrder),
    /// Type 25.
    AcknowledgementForDisturbanceDataTransmission(DisturbanceOrder),
    /// Type 26.
    ReadyForTransmissionOfDisturbanceData {
        /// Fault number.
        fault_number: u16,
        /// Number of grid faults.
        number_of_faults: u16,
        /// Number of channels.
        number_of_channels: u8,
        /// Number of elements per channel.
        number_of_elements: u16,
        /// Interval between elements in microseconds.
        interval: u16,
        /// Four octet time of the first element.
        time: Time,
    },
    /// Type 27.
    ReadyForTransmissionOfAChannel {
        /// Fault number.
        fault_number: u16,
        /// Channel.
        channel: Channel,
        /// Rated primary value.
        primary: f32,
        /// Rated secondary value.
        secondary: f32,
        /// Reference factor.
        reference: f32,
    },
    /// Type 28.
    ReadyForTransmissionOfTags {
        /// Fault number.
        fault_number: u16,
    },
    /// Type 29.
    TransmissionOfTags {
        /// Fault number.
        fault_number: u16,
        /// Tag position.
        tag_position: u16,
        /// Tags, at most 255.
        values: Vec<(IoAddress, DoubleValue)>,
    },
    /// Type 30.
    TransmissionOfDisturbanceValues {
        /// Fault number.
        fault_number: u16,
        /// Channel.
        channel: Channel,
        /// Number of the first element.
        element_number: u16,
        /// Values -1.0 to 1.0 (exclusive), 16-bit fractions, at most 255.
        values: Vec<f64>,
    },
    /// Type 31.
    EndOfTransmission(DisturbanceOrder),
}

impl IoElement {
    /// The ASDU type the element belongs to.
    pub fn asdu_type(&self) -> AsduType {
        match self {
            IoElement::TimeTaggedMessage(_) => AsduType::TimeTaggedMessage,
            IoElement::TimeTaggedMessageWithRelativeTime(_) => {
                AsduType::TimeTaggedMessageWithRelativeTime
            }
            IoElement::Measurands1(_) => AsduType::Measurands1,
            IoElement::TimeTaggedMeasurandsWithRelativeTime(_) => {
                AsduType::TimeTaggedMeasurandsWithRelativeTime
            }
            IoElement::Identification { .. } => AsduType::Identification,
            IoElement::TimeSynchronization(_) => AsduType::TimeSynchronization,
            IoElement::GeneralInterrogation(_) => AsduType::GeneralInterrogation,
            IoElement::GeneralInterrogationTermination(_) => {
                AsduType::GeneralInterrogationTermination
            }
            IoElement::Measurands2(_) => AsduType::Measurands2,
            IoElement::GenericData { .. } => AsduType::GenericData,
            IoElement::GenericIdentification { .. } => AsduType::GenericIdentification,
            IoElement::GeneralCommand { .. } => AsduType::GeneralCommand,
            IoElement::GenericCommand { .. } => AsduType::GenericCommand,
            IoElement::ListOfRecordedDisturbances { .. } => AsduType::ListOfRecordedDisturbances,
            IoElement::OrderForDisturbanceDataTransmission(_) => {
                AsduType::OrderForDisturbanceDataTransmission
            }
            IoElement::AcknowledgementForDisturbanceDataTransmission(_) => {
                AsduType::AcknowledgementForDisturbanceDataTransmission
            }
            IoElement::ReadyForTransmissionOfDisturbanceData { .. } => {
                AsduType::ReadyForTransmissionOfDisturbanceData
            }
            IoElement::ReadyForTransmissionOfAChannel { .. } => {
                AsduType::ReadyForTransmissionOfAChannel
            }
            IoElement::ReadyForTransmissionOfTags { .. } => AsduType::ReadyForTransmissionOfTags,
            IoElement::TransmissionOfTags { .. } => AsduType::TransmissionOfTags,
            IoElement::TransmissionOfDisturbanceValues { .. } => {
                AsduType::TransmissionOfDisturbanceValues
            }
            IoElement::EndOfTransmission(_) => AsduType::EndOfTransmission,
        }
    }
}

/// Order type, fault number and channel: the elements of types 24, 25 and 31.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisturbanceOrder {
    /// Order type.
    pub order_type: OrderType,
    /// Fault number.
    pub fault_number: u16,
    /// Channel.
    pub channel: Channel,
}

/// One information object: an address and its elements (hat's `IO`). Several elements
/// only for the sequence types (measurands, list of recorded disturbances).
#[derive(Debug, Clone, PartialEq)]
pub struct Io {
    /// Function type and information number.
    pub address: IoAddress,
    /// The elements, all of the ASDU's type.
    pub elements: Vec<IoElement>,
}

/// A 103 ASDU (hat's `ASDU`).
#[derive(Debug, Clone, PartialEq)]
pub struct Asdu {
    /// Type identification.
    pub asdu_type: AsduType,
    /// Cause of transmission.
    pub cause: Cause,
    /// Common address of ASDU, 0 to 255 (255 is the broadcast address).
    pub address: u8,
    /// The information objects.
    pub ios: Vec<Io>,
}
