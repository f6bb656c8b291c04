//! Type ids of the 101 and 104 type sets: the information element each carries, its
//! octet size and the size of the time tag after it.

use crate::types::TimeSize;

/// The information element layout of a type id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Element {
    /// SIQ.
    Single,
    /// DIQ.
    Double,
    /// VTI, QDS.
    StepPosition,
    /// BSI, QDS.
    Bitstring,
    /// NVA, QDS.
    Normalized,
    /// NVA only (M_ME_ND).
    NormalizedNoQuality,
    /// SVA, QDS.
    Scaled,
    /// IEEE STD 754, QDS.
    Floating,
    /// BCR.
    BinaryCounter,
    /// SEP, CP16.
    Protection,
    /// SPE, QDP, CP16.
    ProtectionStart,
    /// OCI, QDP, CP16.
    ProtectionCommand,
    /// SCD, QDS.
    Status,
    /// SCO.
    SingleCommand,
    /// DCO.
    DoubleCommand,
    /// RCO.
    RegulatingCommand,
    /// NVA, QOS.
    NormalizedCommand,
    /// SVA, QOS.
    ScaledCommand,
    /// IEEE STD 754, QOS.
    FloatingCommand,
    /// BSI.
    BitstringCommand,
    /// COI.
    Initialization,
    /// QOI.
    Interrogation,
    /// QCC.
    CounterInterrogation,
    /// Nothing.
    Read,
    /// CP56.
    ClockSync,
    /// FBP (101's C_TS_NA).
    FixedTest,
    /// TSC (104's C_TS_TA, followed by a CP56 time tag).
    CounterTest,
    /// QRP.
    Reset,
    /// CP16.
    Delay,
    /// NVA, QPM.
    NormalizedParameter,
    /// SVA, QPM.
    ScaledParameter,
    /// IEEE STD 754, QPM.
    FloatingParameter,
    /// QPA.
    ParameterActivation,
}

impl Element {
    /// Octets of one element, without the time tag.
    pub(super) const fn size(self) -> usize {
        match self {
            Self::Read => 0,
            Self::Single
            | Self::Double
            | Self::SingleCommand
            | Self::DoubleCommand
            | Self::RegulatingCommand
            | Self::Initialization
            | Self::Interrogation
            | Self::CounterInterrogation
            | Self::Reset
            | Self::ParameterActivation => 1,
            Self::StepPosition
            | Self::NormalizedNoQuality
            | Self::FixedTest
            | Self::CounterTest
            | Self::Delay => 2,
            Self::Normalized
            | Self::Scaled
            | Self::Protection
            | Self::NormalizedCommand
            | Self::ScaledCommand
            | Self::NormalizedParameter
            | Self::ScaledParameter => 3,
            Self::ProtectionStart | Self::ProtectionCommand | Self::BitstringCommand => 4,
            Self::Bitstring
            | Self::Floating
            | Self::BinaryCounter
            | Self::Status
            | Self::FloatingCommand
            | Self::FloatingParameter => 5,
            Self::ClockSync => 7,
        }
    }
}

/// What a type id carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TypeInfo {
    /// The element layout.
    pub(super) element: Element,
    /// Size of the time tag after the element(s) of each object, if any.
    pub(super) time: Option<TimeSize>,
}

const fn plain(element: Element) -> Option<TypeInfo> {
    Some(TypeInfo {
        element,
        time: None,
    })
}

const fn cp24(element: Element) -> Option<TypeInfo> {
    Some(TypeInfo {
        element,
        time: Some(TimeSize::Three),
    })
}

const fn cp56(element: Element) -> Option<TypeInfo> {
    Some(TypeInfo {
        element,
        time: Some(TimeSize::Seven),
    })
}

/// The layout of `type_id` in the 104 (`iec104`) or 101 type set; `None` when the set
/// has no message for it.
pub(super) const fn lookup(iec104: bool, type_id: u8) -> Option<TypeInfo> {
    use Element::*;
    match (type_id, iec104) {
        (1, _) => plain(Single),
        (2, false) => cp24(Single),
        (3, _) => plain(Double),
        (4, false) => cp24(Double),
        (5, _) => plain(StepPosition),
        (6, false) => cp24(StepPosition),
        (7, _) => plain(Bitstring),
        (8, false) => cp24(Bitstring),
        (9, _) => plain(Normalized),
        (10, false) => cp24(Normalized),
        (11, _) => plain(Scaled),
        (12, false) => cp24(Scaled),
        (13, _) => plain(Floating),
        (14, false) => cp24(Floating),
        (15, _) => plain(BinaryCounter),
        (16, false) => cp24(BinaryCounter),
        (17, false) => cp24(Protection),
        (18, false) => cp24(ProtectionStart),
        (19, false) => cp24(ProtectionCommand),
        (20, _) => plain(Status),
        (21, _) => plain(NormalizedNoQuality),
        (30, _) => cp56(Single),
        (31, _) => cp56(Double),
        (32, _) => cp56(StepPosition),
        (33, _) => cp56(Bitstring),
        (34, _) => cp56(Normalized),
        (35, _) => cp56(Scaled),
        (36, _) => cp56(Floating),
        (37, _) => cp56(BinaryCounter),
        (38, _) => cp56(Protection),
        (39, _) => cp56(ProtectionStart),
        (40, _) => cp56(ProtectionCommand),
        (45, _) => plain(SingleCommand),
        (46, _) => plain(DoubleCommand),
        (47, _) => plain(RegulatingCommand),
        (48, _) => plain(NormalizedCommand),
        (49, _) => plain(ScaledCommand),
        (50, _) => plain(FloatingCommand),
        (51, _) => plain(BitstringCommand),
        (58, true) => cp56(SingleCommand),
        (59, true) => cp56(DoubleCommand),
        (60, true) => cp56(RegulatingCommand),
        (61, true) => cp56(NormalizedCommand),
        (62, true) => cp56(ScaledCommand),
        (63, true) => cp56(FloatingCommand),
        (64, true) => cp56(BitstringCommand),
        (70, _) => plain(Initialization),
        (100, _) => plain(Interrogation),
        (101, _) => plain(CounterInterrogation),
        (102, _) => plain(Read),
        (103, _) => plain(ClockSync),
        (104, false) => plain(FixedTest),
        (105, _) => plain(Reset),
        (106, false) => plain(Delay),
        (107, true) => cp56(CounterTest),
        (110, _) => plain(NormalizedParameter),
        (111, _) => plain(ScaledParameter),
        (112, _) => plain(FloatingParameter),
        (113, _) => plain(ParameterActivation),
        _ => None,
    }
}
