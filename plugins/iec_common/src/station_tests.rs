//! hat's answers to each message kind, checked message by message.

use crate::{DataKey, DataType};
use iec60870::types::{
    BinaryCounterData, BinaryCounterValue, ClockSyncMsg, CommandCause, CommandMsg,
    CounterInterrogationMsg, Data, DataCause, DataMsg, FreezeCode, InterrogationMsg, Msg,
    ReadCause, ReadMsg, SingleCommand, SingleData, SingleValue, Time,
};

use super::*;

fn key(data_type: DataType, asdu_address: u16, io_address: u32) -> DataKey {
    DataKey {
        data_type,
        asdu_address,
        io_address,
    }
}

fn single(asdu_address: u16, io_address: u32, on: bool) -> DataMsg {
    DataMsg {
        is_test: false,
        originator_address: 0,
        asdu_address,
        io_address,
        data: Data::Single(SingleData {
            value: if on {
                SingleValue::On
            } else {
                SingleValue::Off
            },
            quality: Default::default(),
        }),
        time: None,
        cause: DataCause::Spontaneous,
    }
}

fn counter(asdu_address: u16, io_address: u32, value: i32) -> DataMsg {
    DataMsg {
        data: Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(value),
            quality: Default::default(),
        }),
        ..single(asdu_address, io_address, false)
    }
}

/// The broadcast address of one-octet common addresses.
const BROADCAST: u16 = 0xFF;

/// Points: single 1/1 (value), single 2/5 (no value yet), counter 1/9, single 1/2.
fn table() -> DataTable {
    let mut table = DataTable::new(
        [
            key(DataType::Single, 1, 1),
            key(DataType::Single, 2, 5),
            key(DataType::BinaryCounter, 1, 9),
            key(DataType::Single, 1, 2),
        ],
        BROADCAST,
    );
    assert!(table.set(&key(DataType::Single, 1, 1), single(1, 1, true)));
    assert!(table.set(&key(DataType::BinaryCounter, 1, 9), counter(1, 9, 42)));
    assert!(table.set(&key(DataType::Single, 1, 2), single(1, 2, false)));
    assert!(!table.set(&key(DataType::Single, 7, 7), single(7, 7, true)));
    table
}

fn gi(asdu_address: u16, cause: CommandCause) -> InterrogationMsg {
    InterrogationMsg {
        is_test: true,
        originator_address: 3,
        asdu_address,
        request: 20,
        is_negative_confirm: false,
        cause,
    }
}

fn gi_reply(asdu_address: u16, cause: CommandCause, negative: bool) -> Msg {
    Msg::Interrogation(InterrogationMsg {
        asdu_address,
        cause,
        is_negative_confirm: negative,
        ..gi(0, CommandCause::Activation)
    })
}

fn interrogated(msg: DataMsg, cause: DataCause) -> Msg {
    Msg::Data(DataMsg {
        is_test: true,
        cause,
        ..msg
    })
}

#[test]
fn broadcast_interrogation_answers_each_asdu_address_in_configuration_order() {
    let batches = interrogation(&table(), gi(BROADCAST, CommandCause::Activation));
    use CommandCause::{ActivationConfirmation as Con, ActivationTermination as Term};
    assert_eq!(
        batches,
        vec![
            vec![gi_reply(1, Con, false)],
            vec![
                interrogated(single(1, 1, true), DataCause::InterrogatedStation),
                interrogated(single(1, 2, false), DataCause::InterrogatedStation),
            ],
            vec![gi_reply(1, Term, false)],
            // ASDU 2 has a point without a value: confirmation and termination only.
            vec![gi_reply(2, Con, false)],
            vec![gi_reply(2, Term, false)],
        ]
    );
}

#[test]
fn the_broadcast_address_is_the_tables_own() {
    // 104 (two-octet common addresses): 0xFFFF covers every address and 0xFF is an
    // address like any other (no points: confirmed and terminated, as hat does).
    let mut wide = DataTable::new([key(DataType::Single, 1, 1)], 0xFFFF);
    assert!(wide.set(&key(DataType::Single, 1, 1), single(1, 1, true)));
    use CommandCause::{ActivationConfirmation as Con, ActivationTermination as Term};
    assert_eq!(
        interrogation(&wide, gi(0xFFFF, CommandCause::Activation)),
        vec![
            vec![gi_reply(1, Con, false)],
            vec![interrogated(
                single(1, 1, true),
                DataCause::InterrogatedStation
            )],
            vec![gi_reply(1, Term, false)],
        ]
    );
    assert_eq!(
        interrogation(&wide, gi(0xFF, CommandCause::Activation)),
        vec![
            vec![gi_reply(0xFF, Con, false)],
            vec![gi_reply(0xFF, Term, false)]
        ]
    );
}

#[test]
fn interrogation_of_one_address_and_of_an_unknown_one() {
    use CommandCause::{ActivationConfirmation as Con, ActivationTermination as Term};
    let batches = interrogation(&table(), gi(2, CommandCause::Activation));
    assert_eq!(
        batches,
        vec![
            vec![gi_reply(2, Con, false)],
            vec![gi_reply(2, Term, false)]
        ]
    );
    // hat confirms an address it has no data for (positively) and terminates it.
    let batches = interrogation(&table(), gi(77, CommandCause::Activation));
    assert_eq!(
        batches,
        vec![
            vec![gi_reply(77, Con, false)],
            vec![gi_reply(77, Term, false)]
        ]
    );
}

#[test]
fn interrogation_deactivation_and_other_causes_are_refused() {
    assert_eq!(
        interrogation(&table(), gi(1, CommandCause::Deactivation)),
        vec![vec![gi_reply(
            1,
            CommandCause::DeactivationConfirmation,
            true
        )]]
    );
    assert_eq!(
        interrogation(&table(), gi(1, CommandCause::Other(13))),
        vec![vec![gi_reply(1, CommandCause::UnknownCause, true)]]
    );
}

#[test]
fn counter_interrogation_answers_only_counters() {
    let req = CounterInterrogationMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: BROADCAST,
        request: 5,
        freeze: FreezeCode::Read,
        is_negative_confirm: false,
        cause: CommandCause::Activation,
    };
    let reply = |cause| {
        Msg::CounterInterrogation(CounterInterrogationMsg {
            asdu_address: 1,
            cause,
            ..req
        })
    };
    assert_eq!(
        counter_interrogation(&table(), req),
        vec![
            vec![reply(CommandCause::ActivationConfirmation)],
            vec![Msg::Data(DataMsg {
                cause: DataCause::InterrogatedCounter,
                ..counter(1, 9, 42)
            })],
            vec![reply(CommandCause::ActivationTermination)],
        ]
    );
}

fn command(cause: CommandCause) -> CommandMsg {
    CommandMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address: 100,
        command: iec60870::types::Command::Single(SingleCommand {
            value: SingleValue::On,
            select: false,
            qualifier: 0,
        }),
        is_negative_confirm: false,
        time: None,
        cause,
    }
}

#[test]
fn commands_with_request_causes_become_events_others_are_refused() {
    let table = table();
    for cause in [CommandCause::Activation, CommandCause::Deactivation] {
        assert_eq!(
            react(&table, Msg::Command(command(cause))),
            Reaction::Command(command(cause))
        );
    }
    assert_eq!(
        react(
            &table,
            Msg::Command(command(CommandCause::ActivationConfirmation))
        ),
        Reaction::Reply(vec![vec![Msg::Command(CommandMsg {
            is_negative_confirm: true,
            ..command(CommandCause::UnknownCause)
        })]])
    );
}

#[test]
fn clock_sync_read_and_data_get_hats_answers() {
    let table = table();
    let time = Time::from_system_time(std::time::SystemTime::UNIX_EPOCH);
    let sync = ClockSyncMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        time,
        is_negative_confirm: false,
        cause: ClockSyncCause::Activation,
    };
    assert_eq!(
        react(&table, Msg::ClockSync(sync)),
        Reaction::Reply(vec![vec![Msg::ClockSync(ClockSyncMsg {
            cause: ClockSyncCause::ActivationConfirmation,
            is_negative_confirm: true,
            ..sync
        })]])
    );
    let read = ReadMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address: 1,
        cause: ReadCause::Request,
    };
    assert_eq!(
        react(&table, Msg::Read(read)),
        Reaction::Reply(vec![vec![Msg::Read(ReadMsg {
            cause: ReadCause::UnknownType,
            ..read
        })]])
    );
    assert!(matches!(
        react(&table, Msg::Data(single(1, 1, true))),
        Reaction::Ignore(_)
    ));
}
