//! Values, qualities, data, commands and parameters (hat's `*Value`, `*Quality`,
//! `*Data`, `*Command`, `*Parameter`).

/// Single point value (hat's `SingleValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SingleValue {
    /// 0.
    Off,
    /// 1.
    On,
}

impl SingleValue {
    /// The wire value (one bit).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::On => 1,
        }
    }

    /// The value of the lowest bit of `bits`.
    pub const fn from_bit(bits: u8) -> Self {
        if bits & 1 == 0 {
            Self::Off
        } else {
            Self::On
        }
    }
}

/// Double point value (hat's `DoubleValue`; `Fault` is the standard's INDETERMINATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoubleValue {
    /// 0: intermediate state.
    Intermediate,
    /// 1.
    Off,
    /// 2.
    On,
    /// 3: indeterminate.
    Fault,
}

impl DoubleValue {
    /// The wire value (two bits).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Intermediate => 0,
            Self::Off => 1,
            Self::On => 2,
            Self::Fault => 3,
        }
    }

    /// The value of the lowest two bits of `bits`.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Self::Intermediate,
            1 => Self::Off,
            2 => Self::On,
            _ => Self::Fault,
        }
    }
}

/// Regulating step command value (hat's `RegulatingValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegulatingValue {
    /// 1: next step lower.
    Lower,
    /// 2: next step higher.
    Higher,
}

impl RegulatingValue {
    /// The wire value (two bits).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Lower => 1,
            Self::Higher => 2,
        }
    }

    /// The value for the two bits `bits`, `None` for the not permitted 0 and 3.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits & 0x03 {
            1 => Some(Self::Lower),
            2 => Some(Self::Higher),
            _ => None,
        }
    }
}

/// Step position value (hat's `StepPositionValue`): `value` in -64..=63.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepPositionValue {
    /// Position, -64 to 63.
    pub value: i8,
    /// Equipment is in transient state.
    pub transient: bool,
}

/// Bitstring of 32 bits as its 4 octets in wire order (hat's `BitstringValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BitstringValue(pub [u8; 4]);

/// Normalized value, -1.0 to below 1.0 (hat's `NormalizedValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizedValue(pub f32);

/// Scaled value (hat's `ScaledValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScaledValue(pub i16);

/// Short floating point value (hat's `FloatingValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatingValue(pub f32);

/// Binary counter reading (hat's `BinaryCounterValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BinaryCounterValue(pub i32);

/// Event of protection equipment state (hat's `ProtectionValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionValue {
    /// 1.
    Off,
    /// 2.
    On,
}

impl ProtectionValue {
    /// The wire value (two bits).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Off => 1,
            Self::On => 2,
        }
    }

    /// The value for the two bits `bits`, `None` for the not permitted 0 and 3.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits & 0x03 {
            1 => Some(Self::Off),
            2 => Some(Self::On),
            _ => None,
        }
    }
}

/// Start events of protection equipment (hat's `ProtectionStartValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectionStartValue {
    /// General start.
    pub general: bool,
    /// Start of phase L1.
    pub l1: bool,
    /// Start of phase L2.
    pub l2: bool,
    /// Start of phase L3.
    pub l3: bool,
    /// Start of earth current.
    pub ie: bool,
    /// Start in reverse direction.
    pub reverse: bool,
}

/// Output circuit information of protection equipment (hat's `ProtectionCommandValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectionCommandValue {
    /// General command to output circuit.
    pub general: bool,
    /// Command to output circuit phase L1.
    pub l1: bool,
    /// Command to output circuit phase L2.
    pub l2: bool,
    /// Command to output circuit phase L3.
    pub l3: bool,
}

/// Packed single points with status change detection (hat's `StatusValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusValue {
    /// The 16 status bits, bit 0 first.
    pub value: [bool; 16],
    /// The 16 change detection bits, bit 0 first.
    pub change: [bool; 16],
}

/// Quality of single and double points (hat's `IndicationQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IndicationQuality {
    /// IV.
    pub invalid: bool,
    /// NT.
    pub not_topical: bool,
    /// SB.
    pub substituted: bool,
    /// BL.
    pub blocked: bool,
}

/// Quality of measured values, step positions, bitstrings and status (hat's
/// `MeasurementQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MeasurementQuality {
    /// IV.
    pub invalid: bool,
    /// NT.
    pub not_topical: bool,
    /// SB.
    pub substituted: bool,
    /// BL.
    pub blocked: bool,
    /// OV.
    pub overflow: bool,
}

/// Quality of binary counter readings (hat's `CounterQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CounterQuality {
    /// IV.
    pub invalid: bool,
    /// CA: counter was adjusted since last reading.
    pub adjusted: bool,
    /// CY: counter overflow.
    pub overflow: bool,
    /// Sequence number, 0 to 31.
    pub sequence: u8,
}

/// Quality of protection events (hat's `ProtectionQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProtectionQuality {
    /// IV.
    pub invalid: bool,
    /// NT.
    pub not_topical: bool,
    /// SB.
    pub substituted: bool,
    /// BL.
    pub blocked: bool,
    /// EI: elapsed time invalid.
    pub time_invalid: bool,
}

/// Any quality (hat's `Quality` union).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// Of single and double points.
    Indication(IndicationQuality),
    /// Of measured values.
    Measurement(MeasurementQuality),
    /// Of counters.
    Counter(CounterQuality),
    /// Of protection events.
    Protection(ProtectionQuality),
}

/// Freeze/reset qualifier of a counter interrogation (hat's `FreezeCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FreezeCode {
    /// 0: read, no freeze or reset.
    Read,
    /// 1: counter freeze without reset.
    Freeze,
    /// 2: counter freeze with reset.
    FreezeAndReset,
    /// 3: counter reset.
    Reset,
}

impl FreezeCode {
    /// The wire value (two bits).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Read => 0,
            Self::Freeze => 1,
            Self::FreezeAndReset => 2,
            Self::Reset => 3,
        }
    }

    /// The code of the lowest two bits of `bits`.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Self::Read,
            1 => Self::Freeze,
            2 => Self::FreezeAndReset,
            _ => Self::Reset,
        }
    }
}

/// Single point information (hat's `SingleData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SingleData {
    /// Value.
    pub value: SingleValue,
    /// Quality.
    pub quality: IndicationQuality,
}

/// Double point information (hat's `DoubleData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoubleData {
    /// Value.
    pub value: DoubleValue,
    /// Quality.
    pub quality: IndicationQuality,
}

/// Step position information (hat's `StepPositionData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepPositionData {
    /// Value.
    pub value: StepPositionValue,
    /// Quality.
    pub quality: MeasurementQuality,
}

/// Bitstring of 32 bits (hat's `BitstringData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BitstringData {
    /// Value.
    pub value: BitstringValue,
    /// Quality.
    pub quality: MeasurementQuality,
}

/// Measured value, normalized (hat's `NormalizedData`). `quality` is `None` for
/// M_ME_ND (normalized value without quality descriptor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizedData {
    /// Value.
    pub value: NormalizedValue,
    /// Quality, absent in M_ME_ND.
    pub quality: Option<MeasurementQuality>,
}

/// Measured value, scaled (hat's `ScaledData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScaledData {
    /// Value.
    pub value: ScaledValue,
    /// Quality.
    pub quality: MeasurementQuality,
}

/// Measured value, short floating point (hat's `FloatingData`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatingData {
    /// Value.
    pub value: FloatingValue,
    /// Quality.
    pub quality: MeasurementQuality,
}

/// Integrated totals (hat's `BinaryCounterData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BinaryCounterData {
    /// Value.
    pub value: BinaryCounterValue,
    /// Quality.
    pub quality: CounterQuality,
}

/// Event of protection equipment (hat's `ProtectionData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectionData {
    /// Value.
    pub value: ProtectionValue,
    /// Quality.
    pub quality: ProtectionQuality,
    /// Elapsed time in milliseconds.
    pub elapsed_time: u16,
}

/// Packed start events of protection equipment (hat's `ProtectionStartData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectionStartData {
    /// Value.
    pub value: ProtectionStartValue,
    /// Quality.
    pub quality: ProtectionQuality,
    /// Relay duration time in milliseconds.
    pub duration_time: u16,
}

/// Packed output circuit information of protection equipment (hat's
/// `ProtectionCommandData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectionCommandData {
    /// Value.
    pub value: ProtectionCommandValue,
    /// Quality.
    pub quality: ProtectionQuality,
    /// Relay operating time in milliseconds.
    pub operating_time: u16,
}

/// Packed single point information with status change detection (hat's `StatusData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusData {
    /// Value.
    pub value: StatusValue,
    /// Quality.
    pub quality: MeasurementQuality,
}

/// Monitored information of one information object (hat's `Data` union).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Data {
    /// M_SP_*.
    Single(SingleData),
    /// M_DP_*.
    Double(DoubleData),
    /// M_ST_*.
    StepPosition(StepPositionData),
    /// M_BO_*.
    Bitstring(BitstringData),
    /// M_ME_NA, M_ME_TA, M_ME_TD, M_ME_ND.
    Normalized(NormalizedData),
    /// M_ME_NB, M_ME_TB, M_ME_TE.
    Scaled(ScaledData),
    /// M_ME_NC, M_ME_TC, M_ME_TF.
    Floating(FloatingData),
    /// M_IT_*.
    BinaryCounter(BinaryCounterData),
    /// M_EP_TA, M_EP_TD.
    Protection(ProtectionData),
    /// M_EP_TB, M_EP_TE.
    ProtectionStart(ProtectionStartData),
    /// M_EP_TC, M_EP_TF.
    ProtectionCommand(ProtectionCommandData),
    /// M_PS_NA.
    Status(StatusData),
}

/// Single command (hat's `SingleCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SingleCommand {
    /// Value.
    pub value: SingleValue,
    /// Select (true) or execute (false).
    pub select: bool,
    /// Qualifier of command (QU), 0 to 31.
    pub qualifier: u8,
}

/// Double command (hat's `DoubleCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoubleCommand {
    /// Value.
    pub value: DoubleValue,
    /// Select (true) or execute (false).
    pub select: bool,
    /// Qualifier of command (QU), 0 to 31.
    pub qualifier: u8,
}

/// Regulating step command (hat's `RegulatingCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegulatingCommand {
    /// Value.
    pub value: RegulatingValue,
    /// Select (true) or execute (false).
    pub select: bool,
    /// Qualifier of command (QU), 0 to 31.
    pub qualifier: u8,
}

/// Set point command, normalized value (hat's `NormalizedCommand`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizedCommand {
    /// Value.
    pub value: NormalizedValue,
    /// Select (true) or execute (false).
    pub select: bool,
}

/// Set point command, scaled value (hat's `ScaledCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScaledCommand {
    /// Value.
    pub value: ScaledValue,
    /// Select (true) or execute (false).
    pub select: bool,
}

/// Set point command, short floating point value (hat's `FloatingCommand`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatingCommand {
    /// Value.
    pub value: FloatingValue,
    /// Select (true) or execute (false).
    pub select: bool,
}

/// Bitstring of 32 bits command (hat's `BitstringCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BitstringCommand {
    /// Value.
    pub value: BitstringValue,
}

/// Command of one information object (hat's `Command` union).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// C_SC_NA, C_SC_TA.
    Single(SingleCommand),
    /// C_DC_NA, C_DC_TA.
    Double(DoubleCommand),
    /// C_RC_NA, C_RC_TA.
    Regulating(RegulatingCommand),
    /// C_SE_NA, C_SE_TA.
    Normalized(NormalizedCommand),
    /// C_SE_NB, C_SE_TB.
    Scaled(ScaledCommand),
    /// C_SE_NC, C_SE_TC.
    Floating(FloatingCommand),
    /// C_BO_NA, C_BO_TA.
    Bitstring(BitstringCommand),
}

/// Parameter of measured value, normalized (hat's `NormalizedParameter`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizedParameter {
    /// Value.
    pub value: NormalizedValue,
    /// Qualifier of parameter (QPM).
    pub qualifier: u8,
}

/// Parameter of measured value, scaled (hat's `ScaledParameter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScaledParameter {
    /// Value.
    pub value: ScaledValue,
    /// Qualifier of parameter (QPM).
    pub qualifier: u8,
}

/// Parameter of measured value, short floating point (hat's `FloatingParameter`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatingParameter {
    /// Value.
    pub value: FloatingValue,
    /// Qualifier of parameter (QPM).
    pub qualifier: u8,
}

/// Parameter of one information object (hat's `Parameter` union).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parameter {
    /// P_ME_NA.
    Normalized(NormalizedParameter),
    /// P_ME_NB.
    Scaled(ScaledParameter),
    /// P_ME_NC.
    Floating(FloatingParameter),
}
