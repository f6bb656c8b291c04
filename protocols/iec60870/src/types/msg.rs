//! Messages (hat's `*Msg` of `hat.drivers.iec101` and `hat.drivers.iec104`).
//!
//! One message is one information object (or one element of it): the codec packs
//! several compatible messages into one ASDU and unpacks an ASDU into its messages.
//! 101 and 104 share these types; where they differ (`CommandMsg::time`, `TestMsg`,
//! `DelayMsg`) the field documentation says which profile uses what.

use super::{
    ActivationCause, AsduAddress, ClockSyncCause, Command, CommandCause, Data, DataCause,
    DelayCause, FreezeCode, InitializationCause, IoAddress, OriginatorAddress, Parameter,
    ParameterActivationCause, ParameterCause, ReadCause, Time,
};

/// Monitored information (hat's `DataMsg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
    /// Value and quality.
    pub data: Data,
    /// Time tag: `None` for the types without time, size SEVEN (CP56) for the `_TB`..`_TF`
    /// types, size THREE (CP24) for the 101-only `_TA`..`_TC` types.
    pub time: Option<Time>,
    /// Cause of transmission.
    pub cause: DataCause,
}

/// Command (hat's `CommandMsg`; 104's carries `time`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommandMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
    /// The command.
    pub command: Command,
    /// P/N bit of the cause of transmission.
    pub is_negative_confirm: bool,
    /// CP56 time tag of the 104-only commands with time (type ids 58 to 64); always
    /// `None` in 101.
    pub time: Option<Time>,
    /// Cause of transmission.
    pub cause: CommandCause,
}

/// End of initialisation (hat's `InitializationMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitializationMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Initialisation after a change of local parameters (BS1 bit of COI).
    pub param_change: bool,
    /// Cause of initialisation (COI, 0 to 127).
    pub cause: InitializationCause,
}

/// General or group interrogation (hat's `InterrogationMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterrogationMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Qualifier of interrogation (QOI): 20 station, 21 to 36 groups.
    pub request: u8,
    /// P/N bit of the cause of transmission.
    pub is_negative_confirm: bool,
    /// Cause of transmission.
    pub cause: CommandCause,
}

/// Counter interrogation (hat's `CounterInterrogationMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterInterrogationMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Request (RQT of QCC), 0 to 63: 5 general, 1 to 4 groups.
    pub request: u8,
    /// Freeze (FRZ of QCC).
    pub freeze: FreezeCode,
    /// P/N bit of the cause of transmission.
    pub is_negative_confirm: bool,
    /// Cause of transmission.
    pub cause: CommandCause,
}

/// Read command (hat's `ReadMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address to read.
    pub io_address: IoAddress,
    /// Cause of transmission.
    pub cause: ReadCause,
}

/// Clock synchronisation (hat's `ClockSyncMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSyncMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// The time, size SEVEN.
    pub time: Time,
    /// P/N bit of the cause of transmission.
    pub is_negative_confirm: bool,
    /// Cause of transmission.
    pub cause: ClockSyncCause,
}

/// Test command (hat's `TestMsg`).
///
/// 104 (C_TS_TA_1, type id 107) carries a test sequence counter and a CP56 time: encoding
/// needs `time`. 101 (C_TS_NA_1, type id 104) carries only the fixed test pattern: it
/// decodes with `counter` 0 and `time` `None`, and encoding ignores both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Test sequence counter (TSC), 104 only.
    pub counter: u16,
    /// CP56 time tag, 104 only.
    pub time: Option<Time>,
    /// Cause of transmission.
    pub cause: ActivationCause,
}

/// Reset process command (hat's `ResetMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Qualifier of reset process command (QRP).
    pub qualifier: u8,
    /// Cause of transmission.
    pub cause: ActivationCause,
}

/// Delay acquisition command, 101 only (hat's `DelayMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Delay in milliseconds (CP16).
    pub time: u16,
    /// Cause of transmission.
    pub cause: DelayCause,
}

/// Parameter of measured value (hat's `ParameterMsg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParameterMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
    /// The parameter.
    pub parameter: Parameter,
    /// Cause of transmission.
    pub cause: ParameterCause,
}

/// Parameter activation (hat's `ParameterActivationMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterActivationMsg {
    /// T bit of the cause of transmission.
    pub is_test: bool,
    /// Originator address.
    pub originator_address: OriginatorAddress,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
    /// Qualifier of parameter activation (QPA).
    pub qualifier: u8,
    /// Cause of transmission.
    pub cause: ParameterActivationCause,
}

/// Any message (hat's `Msg` union).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Msg {
    /// Monitored information.
    Data(DataMsg),
    /// Command.
    Command(CommandMsg),
    /// End of initialisation.
    Initialization(InitializationMsg),
    /// General or group interrogation.
    Interrogation(InterrogationMsg),
    /// Counter interrogation.
    CounterInterrogation(CounterInterrogationMsg),
    /// Read.
    Read(ReadMsg),
    /// Clock synchronisation.
    ClockSync(ClockSyncMsg),
    /// Test.
    Test(TestMsg),
    /// Reset process.
    Reset(ResetMsg),
    /// Delay acquisition (101 only).
    Delay(DelayMsg),
    /// Parameter of measured value.
    Parameter(ParameterMsg),
    /// Parameter activation.
    ParameterActivation(ParameterActivationMsg),
}
