//! The slave station's answers to a master, without sockets or a line (the 101 and 104
//! slaves share it): the table of current values and what hat-gateway's slave answers to
//! each message kind (interrogation, counter
//! interrogation, clock sync, read, test, reset, parameters, commands with an unknown
//! cause).

use std::collections::HashMap;

use crate::{DataKey, DataType};
use iec60870::types::{
    ActivationCause, AsduAddress, ClockSyncCause, CommandCause, CommandMsg,
    CounterInterrogationMsg, DataCause, DataMsg, InterrogationMsg, Msg, ParameterActivationCause,
    ParameterCause, ReadCause,
};

/// Current value of every configured point, in configuration order (the order hat's
/// dict gives interrogation answers). Points without a value yet hold `None`.
#[derive(Debug, Clone, Default)]
pub struct DataTable {
    entries: Vec<(DataKey, Option<DataMsg>)>,
    index: HashMap<DataKey, usize>,
    /// The broadcast common address of the configured size (0xFF or 0xFFFF): an
    /// interrogation of it covers every ASDU address.
    broadcast: AsduAddress,
}

impl DataTable {
    /// A table of `keys` without values; a repeated key keeps its first place.
    /// `broadcast` is the broadcast common address.
    pub fn new(keys: impl IntoIterator<Item = DataKey>, broadcast: AsduAddress) -> Self {
        let mut table = Self {
            broadcast,
            ..Self::default()
        };
        for key in keys {
            if !table.index.contains_key(&key) {
                table.index.insert(key, table.entries.len());
                table.entries.push((key, None));
            }
        }
        table
    }

    /// Whether `key` is configured.
    pub fn contains(&self, key: &DataKey) -> bool {
        self.index.contains_key(key)
    }

    /// Stores the current value of a configured point; `false` if it is not configured.
    pub fn set(&mut self, key: &DataKey, msg: DataMsg) -> bool {
        match self.index.get(key) {
            Some(i) => {
                self.entries[*i].1 = Some(msg);
                true
            }
            None => false,
        }
    }

    /// Current value of `key`.
    pub fn get(&self, key: &DataKey) -> Option<&DataMsg> {
        self.index
            .get(key)
            .and_then(|i| self.entries[*i].1.as_ref())
    }

    /// Every point in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (&DataKey, Option<&DataMsg>)> {
        self.entries.iter().map(|(key, msg)| (key, msg.as_ref()))
    }
}

/// What the device does with one message from a master.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// Send these batches to the master, in order; each batch is one hat `send` (its
    /// compatible messages share ASDUs).
    Reply(Vec<Vec<Msg>>),
    /// A command request: becomes a `gateway/command` event.
    Command(CommandMsg),
    /// Nothing is sent (hat logs the message as unsupported).
    Ignore(&'static str),
}

/// hat-gateway's slave reaction to `msg`, given the current values.
pub fn react(table: &DataTable, msg: Msg) -> Reaction {
    match msg {
        Msg::Command(cmd) => match cmd.cause {
            CommandCause::Activation | CommandCause::Deactivation => Reaction::Command(cmd),
            _ => Reaction::Reply(vec![vec![Msg::Command(CommandMsg {
                cause: CommandCause::UnknownCause,
                is_negative_confirm: true,
                ..cmd
            })]]),
        },
        Msg::Interrogation(req) => Reaction::Reply(interrogation(table, req)),
        Msg::CounterInterrogation(req) => Reaction::Reply(counter_interrogation(table, req)),
        Msg::Read(req) => Reaction::Reply(vec![vec![Msg::Read(iec60870::types::ReadMsg {
            cause: ReadCause::UnknownType,
            ..req
        })]]),
        Msg::ClockSync(req) => {
            // hat's slave does not take the time from a master: it refuses the
            // activation (negative confirmation) and answers anything else as an
            // unknown cause.
            let cause = if req.cause == ClockSyncCause::Activation {
                ClockSyncCause::ActivationConfirmation
            } else {
                ClockSyncCause::UnknownCause
            };
            Reaction::Reply(vec![vec![Msg::ClockSync(iec60870::types::ClockSyncMsg {
                cause,
                is_negative_confirm: true,
                ..req
            })]])
        }
        Msg::Test(req) => Reaction::Reply(vec![vec![Msg::Test(iec60870::types::TestMsg {
            cause: ActivationCause::UnknownType,
            ..req
        })]]),
        Msg::Reset(req) => Reaction::Reply(vec![vec![Msg::Reset(iec60870::types::ResetMsg {
            cause: ActivationCause::UnknownType,
            ..req
        })]]),
        Msg::Parameter(req) => {
            Reaction::Reply(vec![vec![Msg::Parameter(iec60870::types::ParameterMsg {
                cause: ParameterCause::UnknownType,
                ..req
            })]])
        }
        Msg::ParameterActivation(req) => Reaction::Reply(vec![vec![Msg::ParameterActivation(
            iec60870::types::ParameterActivationMsg {
                cause: ParameterActivationCause::UnknownType,
                ..req
            },
        )]]),
        Msg::Data(_) | Msg::Initialization(_) | Msg::Delay(_) => {
            Reaction::Ignore("unsupported message")
        }
    }
}

/// Values grouped by ASDU address for an interrogation of `asdu_address`: groups in
/// order of first appearance, the requested address last if it has no point (so it
/// still gets its confirmation and termination, as hat answers).
fn groups(
    table: &DataTable,
    asdu_address: AsduAddress,
    counters: bool,
) -> Vec<(AsduAddress, Vec<&DataMsg>)> {
    let mut groups: Vec<(AsduAddress, Vec<&DataMsg>)> = Vec::new();
    let mut index: HashMap<AsduAddress, usize> = HashMap::new();
    for (key, msg) in table.iter() {
        if (key.data_type == DataType::BinaryCounter) != counters
            || (asdu_address != table.broadcast && asdu_address != key.asdu_address)
        {
            continue;
        }
        let i = *index.entry(key.asdu_address).or_insert_with(|| {
            groups.push((key.asdu_address, Vec::new()));
            groups.len() - 1
        });
        if let Some(msg) = msg {
            groups[i].1.push(msg);
        }
    }
    if asdu_address != table.broadcast && groups.is_empty() {
        groups.push((asdu_address, Vec::new()));
    }
    groups
}

/// Per ASDU address: confirmation, the values (one batch), termination.
fn answer(
    groups: Vec<(AsduAddress, Vec<&DataMsg>)>,
    is_test: bool,
    data_cause: DataCause,
    reply: impl Fn(AsduAddress, CommandCause) -> Msg,
) -> Vec<Vec<Msg>> {
    let mut batches = Vec::with_capacity(groups.len() * 3);
    for (asdu_address, msgs) in groups {
        batches.push(vec![reply(
            asdu_address,
            CommandCause::ActivationConfirmation,
        )]);
        if !msgs.is_empty() {
            batches.push(
                msgs.into_iter()
                    .map(|msg| {
                        Msg::Data(DataMsg {
                            is_test,
                            cause: data_cause,
                            ..*msg
                        })
                    })
                    .collect(),
            );
        }
        batches.push(vec![reply(
            asdu_address,
            CommandCause::ActivationTermination,
        )]);
    }
    batches
}

/// hat's answer to a general (or group) interrogation: station data of every
/// matching ASDU address with cause `InterrogatedStation`; deactivation is refused.
pub fn interrogation(table: &DataTable, req: InterrogationMsg) -> Vec<Vec<Msg>> {
    let negative = |cause| {
        vec![vec![Msg::Interrogation(InterrogationMsg {
            cause,
            is_negative_confirm: true,
            ..req
        })]]
    };
    match req.cause {
        CommandCause::Activation => answer(
            groups(table, req.asdu_address, false),
            req.is_test,
            DataCause::InterrogatedStation,
            |asdu_address, cause| {
                Msg::Interrogation(InterrogationMsg {
                    asdu_address,
                    cause,
                    is_negative_confirm: false,
                    ..req
                })
            },
        ),
        CommandCause::Deactivation => negative(CommandCause::DeactivationConfirmation),
        _ => negative(CommandCause::UnknownCause),
    }
}

/// hat's answer to a counter interrogation: the binary counters of every matching ASDU
/// address with cause `InterrogatedCounter`; deactivation is refused.
pub fn counter_interrogation(table: &DataTable, req: CounterInterrogationMsg) -> Vec<Vec<Msg>> {
    let negative = |cause| {
        vec![vec![Msg::CounterInterrogation(CounterInterrogationMsg {
            cause,
            is_negative_confirm: true,
            ..req
        })]]
    };
    match req.cause {
        CommandCause::Activation => answer(
            groups(table, req.asdu_address, true),
            req.is_test,
            DataCause::InterrogatedCounter,
            |asdu_address, cause| {
                Msg::CounterInterrogation(CounterInterrogationMsg {
                    asdu_address,
                    cause,
                    is_negative_confirm: false,
                    ..req
                })
            },
        ),
        CommandCause::Deactivation => negative(CommandCause::DeactivationConfirmation),
        _ => negative(CommandCause::UnknownCause),
    }
}

#[cfg(test)]
#[path = "station_tests.rs"]
mod tests;
