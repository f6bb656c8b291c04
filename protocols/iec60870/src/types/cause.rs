//! Causes of transmission per message kind (hat's `*ReqCause | *ResCause | OtherCause`).
//!
//! Hat types each message's cause as the union of the request and response enums of
//! that kind plus a bare integer for any other value. Here each kind is one enum whose
//! variants are hat's member names in CamelCase plus `Other(u8)`. `from_u8` returns the
//! named variant whenever the value has one (as hat's decoder does), so `Other` only
//! ever holds values without a name in that kind after decoding.

/// Defines a cause enum with its named wire values, an `Other(u8)` variant and
/// `to_u8`/`from_u8`.
macro_rules! cause_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($variant:ident = $value:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("Wire value ", stringify!($value), ".")]
                $variant,
            )+
            /// Any other value (hat's `OtherCause`): 0 to 63 for a cause of transmission.
            Other(u8),
        }

        impl $name {
            /// The wire value.
            pub const fn to_u8(self) -> u8 {
                match self {
                    $(Self::$variant => $value,)+
                    Self::Other(value) => value,
                }
            }

            /// The named variant for `value`, or `Other(value)` when it has none.
            pub const fn from_u8(value: u8) -> Self {
                match value {
                    $($value => Self::$variant,)+
                    other => Self::Other(other),
                }
            }
        }
    };
}

cause_enum! {
    /// Cause of a data message (hat's `DataResCause | OtherCause`).
    DataCause {
        Periodic = 1,
        BackgroundScan = 2,
        Spontaneous = 3,
        Request = 5,
        RemoteCommand = 11,
        LocalCommand = 12,
        InterrogatedStation = 20,
        InterrogatedGroup01 = 21,
        InterrogatedGroup02 = 22,
        InterrogatedGroup03 = 23,
        InterrogatedGroup04 = 24,
        InterrogatedGroup05 = 25,
        InterrogatedGroup06 = 26,
        InterrogatedGroup07 = 27,
        InterrogatedGroup08 = 28,
        InterrogatedGroup09 = 29,
        InterrogatedGroup10 = 30,
        InterrogatedGroup11 = 31,
        InterrogatedGroup12 = 32,
        InterrogatedGroup13 = 33,
        InterrogatedGroup14 = 34,
        InterrogatedGroup15 = 35,
        InterrogatedGroup16 = 36,
        InterrogatedCounter = 37,
        InterrogatedCounter01 = 38,
        InterrogatedCounter02 = 39,
        InterrogatedCounter03 = 40,
        InterrogatedCounter04 = 41,
    }
}

cause_enum! {
    /// Cause of a command, interrogation or counter interrogation message (hat's
    /// `CommandReqCause | CommandResCause | OtherCause`).
    CommandCause {
        Activation = 6,
        ActivationConfirmation = 7,
        Deactivation = 8,
        DeactivationConfirmation = 9,
        ActivationTermination = 10,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of initialisation carried in the end-of-initialisation element (hat's
    /// `InitializationResCause | OtherCause`; other values 0 to 127). The ASDU's cause of
    /// transmission is always INITIALIZED (4).
    InitializationCause {
        LocalPower = 0,
        LocalReset = 1,
        RemoteReset = 2,
    }
}

cause_enum! {
    /// Cause of a read message (hat's `ReadReqCause | ReadResCause | OtherCause`).
    ReadCause {
        Request = 5,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of a clock synchronisation message (hat's `ClockSyncReqCause |
    /// ClockSyncResCause | OtherCause`).
    ClockSyncCause {
        Spontaneous = 3,
        Activation = 6,
        ActivationConfirmation = 7,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of a test or reset message (hat's `ActivationReqCause | ActivationResCause |
    /// OtherCause`).
    ActivationCause {
        Activation = 6,
        ActivationConfirmation = 7,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of a delay acquisition message, 101 only (hat's `DelayReqCause |
    /// DelayResCause | OtherCause`).
    DelayCause {
        Spontaneous = 3,
        Activation = 6,
        ActivationConfirmation = 7,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of a parameter message (hat's `ParameterReqCause | ParameterResCause |
    /// OtherCause`).
    ParameterCause {
        Spontaneous = 3,
        Activation = 6,
        ActivationConfirmation = 7,
        InterrogatedStation = 20,
        InterrogatedGroup01 = 21,
        InterrogatedGroup02 = 22,
        InterrogatedGroup03 = 23,
        InterrogatedGroup04 = 24,
        InterrogatedGroup05 = 25,
        InterrogatedGroup06 = 26,
        InterrogatedGroup07 = 27,
        InterrogatedGroup08 = 28,
        InterrogatedGroup09 = 29,
        InterrogatedGroup10 = 30,
        InterrogatedGroup11 = 31,
        InterrogatedGroup12 = 32,
        InterrogatedGroup13 = 33,
        InterrogatedGroup14 = 34,
        InterrogatedGroup15 = 35,
        InterrogatedGroup16 = 36,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

cause_enum! {
    /// Cause of a parameter activation message (hat's `ParameterActivationReqCause |
    /// ParameterActivationResCause | OtherCause`).
    ParameterActivationCause {
        Activation = 6,
        ActivationConfirmation = 7,
        Deactivation = 8,
        DeactivationConfirmation = 9,
        UnknownType = 44,
        UnknownCause = 45,
        UnknownAsduAddress = 46,
        UnknownIoAddress = 47,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_round_trip_and_others_stay_other() {
        for value in 0..=63u8 {
            assert_eq!(DataCause::from_u8(value).to_u8(), value);
            assert_eq!(CommandCause::from_u8(value).to_u8(), value);
            assert_eq!(ParameterCause::from_u8(value).to_u8(), value);
        }
        assert_eq!(DataCause::from_u8(20), DataCause::InterrogatedStation);
        assert_eq!(DataCause::from_u8(6), DataCause::Other(6));
        assert_eq!(
            CommandCause::from_u8(10),
            CommandCause::ActivationTermination
        );
        assert_eq!(CommandCause::from_u8(3), CommandCause::Other(3));
        assert_eq!(
            InitializationCause::from_u8(2),
            InitializationCause::RemoteReset
        );
        assert_eq!(ClockSyncCause::Spontaneous.to_u8(), 3);
    }
}
