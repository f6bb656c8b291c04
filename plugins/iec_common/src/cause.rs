//! Causes of transmission as JSON (hat's `cause_to_json(cls, cause)` and
//! `cause_from_json(cls, cause)`).
//!
//! hat writes a cause as its member name when it belongs to the enum `cls` the caller
//! names, and as its integer value otherwise; it reads a string as a member of `cls` and
//! an integer as itself. The model's cause enums merge hat's request and response enums,
//! so each direction gets its own pair of functions: e.g. a command response event
//! names `ACTIVATION_CONFIRMATION` but writes an echoed `ACTIVATION` as `6`.

use iec60870::types::{
    ActivationCause, ClockSyncCause, CommandCause, DataCause, InitializationCause, ReadCause,
};
use serde_json::Value;

use crate::payload::invalid;
use crate::PayloadError;

/// Largest "other" cause of transmission (6 bits).
pub const MAX_OTHER_CAUSE: u8 = 63;

/// Largest cause of initialisation (7 bits of the COI element).
pub const MAX_INITIALIZATION_CAUSE: u8 = 127;

/// Defines `to_json`/`from_json` for the subset `names` of a cause enum.
macro_rules! cause_json {
    ($(#[$meta:meta])* $to:ident, $from:ident, $enum:ident { $($variant:ident = $name:literal,)+ }) => {
        cause_json! { $(#[$meta])* $to, $from, $enum (MAX_OTHER_CAUSE) { $($variant = $name,)+ } }
    };
    ($(#[$meta:meta])* $to:ident, $from:ident, $enum:ident ($max:expr) { $($variant:ident = $name:literal,)+ }) => {
        $(#[$meta])*
        #[doc = ""]
        #[doc = concat!("To JSON: the name for ", $(stringify!($variant), " ",)+ "; the integer otherwise.")]
        pub fn $to(cause: $enum) -> Value {
            match cause {
                $($enum::$variant => Value::String($name.to_owned()),)+
                other => Value::from(other.to_u8()),
            }
        }

        $(#[$meta])*
        #[doc = ""]
        #[doc = "From JSON: one of those names, or an integer up to the field's largest value."]
        pub fn $from(json: &Value) -> Result<$enum, PayloadError> {
            match json {
                Value::String(name) => match name.as_str() {
                    $($name => Ok($enum::$variant),)+
                    _ => Err(invalid("/cause", "unknown cause name")),
                },
                other => {
                    let value = crate::payload::int(other, "/cause", 0, i64::from($max))?;
                    // At most `$max` (a u8) by the check above.
                    Ok($enum::from_u8(value as u8))
                }
            }
        }
    };
}

cause_json! {
    /// Data cause (hat's `DataResCause`).
    data_cause_to_json, data_cause_from_json, DataCause {
        Periodic = "PERIODIC",
        BackgroundScan = "BACKGROUND_SCAN",
        Spontaneous = "SPONTANEOUS",
        Request = "REQUEST",
        RemoteCommand = "REMOTE_COMMAND",
        LocalCommand = "LOCAL_COMMAND",
        InterrogatedStation = "INTERROGATED_STATION",
        InterrogatedGroup01 = "INTERROGATED_GROUP01",
        InterrogatedGroup02 = "INTERROGATED_GROUP02",
        InterrogatedGroup03 = "INTERROGATED_GROUP03",
        InterrogatedGroup04 = "INTERROGATED_GROUP04",
        InterrogatedGroup05 = "INTERROGATED_GROUP05",
        InterrogatedGroup06 = "INTERROGATED_GROUP06",
        InterrogatedGroup07 = "INTERROGATED_GROUP07",
        InterrogatedGroup08 = "INTERROGATED_GROUP08",
        InterrogatedGroup09 = "INTERROGATED_GROUP09",
        InterrogatedGroup10 = "INTERROGATED_GROUP10",
        InterrogatedGroup11 = "INTERROGATED_GROUP11",
        InterrogatedGroup12 = "INTERROGATED_GROUP12",
        InterrogatedGroup13 = "INTERROGATED_GROUP13",
        InterrogatedGroup14 = "INTERROGATED_GROUP14",
        InterrogatedGroup15 = "INTERROGATED_GROUP15",
        InterrogatedGroup16 = "INTERROGATED_GROUP16",
        InterrogatedCounter = "INTERROGATED_COUNTER",
        InterrogatedCounter01 = "INTERROGATED_COUNTER01",
        InterrogatedCounter02 = "INTERROGATED_COUNTER02",
        InterrogatedCounter03 = "INTERROGATED_COUNTER03",
        InterrogatedCounter04 = "INTERROGATED_COUNTER04",
    }
}

cause_json! {
    /// Command, interrogation and counter interrogation request cause (hat's
    /// `CommandReqCause`).
    command_req_cause_to_json, command_req_cause_from_json, CommandCause {
        Activation = "ACTIVATION",
        Deactivation = "DEACTIVATION",
    }
}

cause_json! {
    /// Command, interrogation and counter interrogation response cause (hat's
    /// `CommandResCause`).
    command_res_cause_to_json, command_res_cause_from_json, CommandCause {
        ActivationConfirmation = "ACTIVATION_CONFIRMATION",
        DeactivationConfirmation = "DEACTIVATION_CONFIRMATION",
        ActivationTermination = "ACTIVATION_TERMINATION",
        UnknownType = "UNKNOWN_TYPE",
        UnknownCause = "UNKNOWN_CAUSE",
        UnknownAsduAddress = "UNKNOWN_ASDU_ADDRESS",
        UnknownIoAddress = "UNKNOWN_IO_ADDRESS",
    }
}

cause_json! {
    /// Initialisation cause (hat's `InitializationResCause`).
    initialization_cause_to_json, initialization_cause_from_json, InitializationCause (MAX_INITIALIZATION_CAUSE) {
        LocalPower = "LOCAL_POWER",
        LocalReset = "LOCAL_RESET",
        RemoteReset = "REMOTE_RESET",
    }
}

cause_json! {
    /// Read request cause (hat's `ReadReqCause`).
    read_req_cause_to_json, read_req_cause_from_json, ReadCause {
        Request = "REQUEST",
    }
}

cause_json! {
    /// Read response cause (hat's `ReadResCause`).
    read_res_cause_to_json, read_res_cause_from_json, ReadCause {
        UnknownType = "UNKNOWN_TYPE",
        UnknownCause = "UNKNOWN_CAUSE",
        UnknownAsduAddress = "UNKNOWN_ASDU_ADDRESS",
        UnknownIoAddress = "UNKNOWN_IO_ADDRESS",
    }
}

cause_json! {
    /// Clock synchronisation request cause (hat's `ClockSyncReqCause`).
    clock_sync_req_cause_to_json, clock_sync_req_cause_from_json, ClockSyncCause {
        Activation = "ACTIVATION",
    }
}

cause_json! {
    /// Clock synchronisation response cause (hat's `ClockSyncResCause`).
    clock_sync_res_cause_to_json, clock_sync_res_cause_from_json, ClockSyncCause {
        Spontaneous = "SPONTANEOUS",
        ActivationConfirmation = "ACTIVATION_CONFIRMATION",
        UnknownType = "UNKNOWN_TYPE",
        UnknownCause = "UNKNOWN_CAUSE",
        UnknownAsduAddress = "UNKNOWN_ASDU_ADDRESS",
        UnknownIoAddress = "UNKNOWN_IO_ADDRESS",
    }
}

cause_json! {
    /// Test and reset request cause (hat's `ActivationReqCause`).
    activation_req_cause_to_json, activation_req_cause_from_json, ActivationCause {
        Activation = "ACTIVATION",
    }
}

cause_json! {
    /// Test and reset response cause (hat's `ActivationResCause`).
    activation_res_cause_to_json, activation_res_cause_from_json, ActivationCause {
        ActivationConfirmation = "ACTIVATION_CONFIRMATION",
        UnknownType = "UNKNOWN_TYPE",
        UnknownCause = "UNKNOWN_CAUSE",
        UnknownAsduAddress = "UNKNOWN_ASDU_ADDRESS",
        UnknownIoAddress = "UNKNOWN_IO_ADDRESS",
    }
}
