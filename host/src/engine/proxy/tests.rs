//! Behaviour tables for the proxy's state machine: one test per behaviour of
//! `docs/gateway-semantics.md` (section 12, and section 7.5 for restarts) that the
//! proxy implements. Each row drives a fresh [`Machine`] through inputs and checks
//! the actions after every input and the state at the end; the clock is a value, so
//! no row needs a socket, a gate or a sleep.

use std::time::{Duration, Instant};

use gateway_model::{Event, EventId, Timestamp};

use super::machine::{Action, Config, Input, Machine, ProxyState, Shutdown};
use crate::spec::RestartPolicy;

/// A test-side input (`Copy`, so rows are constant tables).
#[derive(Debug, Clone, Copy)]
enum I {
    /// The machine's initial actions (no input).
    Init,
    En(bool),
    Query(Option<bool>),
    /// An event `<prefix>/system/<tag>`.
    Ev(&'static str),
    Overflow(u64, Option<bool>),
    Created,
    CreateErr,
    /// `create` did not finish within `create_timeout`.
    CreateTimeout,
    /// `process_event` returned.
    Done,
    ProcErr,
    /// The close finished.
    Closed,
    SelfClosed,
    Restart,
    /// The clock moves on by this many milliseconds (no input).
    After(u64),
    /// The engine is destroyed.
    Destroy,
}

/// A test-side action.
#[derive(Debug, Clone, Copy)]
enum A {
    Create,
    /// The in-flight `create` is abandoned.
    Abandon,
    /// `process_event` with the event of this tag.
    Process(&'static str),
    Close,
    Watch,
    Run(bool),
    /// Restart timer armed this many milliseconds after the row's start.
    Arm(u64),
    Disarm,
    /// What [`Machine::shutdown`] returned.
    Shut(Shutdown),
}

use A::{Abandon, Arm, Close, Create, Disarm, Process, Run, Shut, Watch};
use I::{
    After, CreateErr, CreateTimeout, Destroy, Done, En, Ev, Init, Overflow, ProcErr, Query,
    Restart, SelfClosed,
};

type Steps = &'static [(I, &'static [A])];

struct Row {
    /// The behaviour number in `docs/gateway-semantics.md` (`"7.5"` for the section).
    b: &'static str,
    case: &'static str,
    /// Steps that bring the machine to the row's starting point (also checked).
    from: Steps,
    steps: Steps,
    /// The state after the last step.
    end: ProxyState,
}

const STARTING: Steps = &[(Init, &[Run(false)])];
const DISABLED: Steps = &[(Init, &[Run(false)]), (Query(None), &[])];
const CREATING: Steps = &[(Init, &[Run(false)]), (Query(Some(true)), &[Create])];
const RUNNING: Steps = &[
    (Init, &[Run(false)]),
    (Query(Some(true)), &[Create]),
    (I::Created, &[Watch, Run(true)]),
];
/// Failed with `restart: never` (the device closed itself).
const FAILED: Steps = &[
    (Init, &[Run(false)]),
    (Query(Some(true)), &[Create]),
    (I::Created, &[Watch, Run(true)]),
    (SelfClosed, &[Close]),
    (I::Closed, &[Run(false)]),
];

const PREFIX: [&str; 4] = ["gateway", "G", "T", "D"];

/// `restart: never`, a queue of 3 events.
const NEVER: Config = Config {
    queue_capacity: 3,
    restart: RestartPolicy::Never,
    initial_running_false: true,
};

/// `restart: on-failure`: 0.5 s doubling to 1.5 s, at most 3 failures per minute.
const ON_FAILURE: Config = Config {
    queue_capacity: 3,
    restart: RestartPolicy::OnFailure {
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_millis(1500),
        max_restarts: 3,
        window: Duration::from_secs(60),
    },
    initial_running_false: true,
};

fn event(tag: &str) -> Event {
    let mut event_type: Vec<String> = PREFIX.iter().map(|s| (*s).to_owned()).collect();
    event_type.extend(["system".to_owned(), tag.to_owned()]);
    Event {
        id: EventId {
            server: 1,
            session: 1,
            instance: 1,
        },
        event_type,
        timestamp: Timestamp::default(),
        source_timestamp: None,
        payload: None,
    }
}

fn input(i: I) -> Input {
    match i {
        En(enabled) => Input::Enable(enabled),
        Query(enabled) => Input::QueryResult(enabled),
        Ev(tag) => Input::Event(Box::new(event(tag))),
        Overflow(dropped, lost_enable) => Input::QueueOverflow {
            dropped,
            lost_enable,
        },
        I::Created => Input::Created,
        CreateErr => Input::CreateFailed("device error: boom".to_owned()),
        CreateTimeout => Input::CreateTimedOut,
        Done => Input::Processed,
        ProcErr => Input::ProcessFailed("device error: boom".to_owned()),
        I::Closed => Input::CloseDone,
        SelfClosed => Input::SelfClosed,
        Restart => Input::RestartDue,
        Init | After(_) | Destroy => unreachable!("not a machine input"),
    }
}

fn describe(action: &Action, t0: Instant) -> String {
    match action {
        Action::Create => "create".to_owned(),
        Action::AbandonCreate => "abandon".to_owned(),
        Action::Process(event) => format!("process {}", event.event_type.join("/")),
        Action::Close => "close".to_owned(),
        Action::Watch => "watch".to_owned(),
        Action::RegisterRunning(running) => format!("running={running}"),
        Action::ArmRestart(at) => format!("arm +{}ms", at.duration_since(t0).as_millis()),
        Action::DisarmRestart => "disarm".to_owned(),
    }
}

fn expected(a: &A) -> String {
    match a {
        Create => "create".to_owned(),
        Abandon => "abandon".to_owned(),
        Process(tag) => format!("process {}/system/{tag}", PREFIX.join("/")),
        Close => "close".to_owned(),
        Watch => "watch".to_owned(),
        Run(running) => format!("running={running}"),
        Arm(ms) => format!("arm +{ms}ms"),
        Disarm => "disarm".to_owned(),
        Shut(shutdown) => format!("shutdown {shutdown:?}"),
    }
}

/// Runs every row on a fresh machine with `config`.
fn check(config: Config, rows: &[Row]) {
    for row in rows {
        let t0 = Instant::now();
        let mut now = t0;
        let mut machine = Machine::new(config);
        for (n, (i, want)) in row.from.iter().chain(row.steps).enumerate() {
            let got: Vec<String> = match i {
                Init => std::iter::from_fn(|| machine.poll_action())
                    .map(|a| describe(&a, t0))
                    .collect(),
                After(ms) => {
                    now += Duration::from_millis(*ms);
                    Vec::new()
                }
                Destroy => vec![format!("shutdown {:?}", machine.shutdown())],
                _ => {
                    machine.handle(input(*i), now);
                    std::iter::from_fn(|| machine.poll_action())
                        .map(|a| describe(&a, t0))
                        .collect()
                }
            };
            let want: Vec<String> = want.iter().map(expected).collect();
            assert_eq!(
                got, want,
                "behaviour {} ({}), step {n} {i:?}: actions",
                row.b, row.case
            );
        }
        assert_eq!(
            machine.state(),
            row.end,
            "behaviour {} ({}): final state",
            row.b,
            row.case
        );
    }
}

#[test]
fn b18_running_false_before_the_query_result_and_any_create() {
    check(
        NEVER,
        &[
            Row {
                b: "18",
                case: "running=false is the first action; create only after the result",
                from: STARTING,
                steps: &[(Query(Some(true)), &[Create])],
                end: ProxyState::Creating,
            },
            Row {
                b: "18",
                case: "an enable=true notified while starting does not create yet",
                from: STARTING,
                steps: &[(En(true), &[])],
                end: ProxyState::Starting,
            },
        ],
    );
}

/// `event_types: hat-gateway-0.6`: no initial `running=false` (hat-gateway 0.6.43 and
/// later); everything after it is the same.
#[test]
fn hat_layout_registers_no_initial_running_false() {
    check(
        Config {
            initial_running_false: false,
            ..NEVER
        },
        &[
            Row {
                b: "18",
                case: "hat-gateway-0.6: nothing at start; running=true after create",
                from: &[(Init, &[])],
                steps: &[
                    (Query(Some(true)), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "21",
                case: "hat-gateway-0.6: disabled at start registers nothing",
                from: &[(Init, &[])],
                steps: &[(Query(Some(false)), &[])],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn b20_enable_true_at_start_creates_once_then_running_true() {
    check(
        NEVER,
        &[
            Row {
                b: "20",
                case: "create once, running=true after it returned",
                from: STARTING,
                steps: &[
                    (Query(Some(true)), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "20",
                case: "enable=true again while creating calls create no second time",
                from: CREATING,
                steps: &[(En(true), &[]), (I::Created, &[Watch, Run(true)])],
                end: ProxyState::Running,
            },
        ],
    );
}

#[test]
fn b21_no_enable_or_false_at_start_does_not_create() {
    check(
        NEVER,
        &[
            Row {
                b: "21",
                case: "no enable event",
                from: STARTING,
                steps: &[(Query(None), &[])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "21",
                case: "latest enable=false",
                from: STARTING,
                steps: &[(Query(Some(false)), &[])],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn b23_enable_true_while_running_does_nothing() {
    check(
        NEVER,
        &[Row {
            b: "23",
            case: "no create, no running event",
            from: RUNNING,
            steps: &[(En(true), &[]), (En(true), &[])],
            end: ProxyState::Running,
        }],
    );
}

#[test]
fn b24_enable_false_closes_then_registers_running_false() {
    check(
        NEVER,
        &[
            Row {
                b: "24",
                case: "close, and running=false only once it completed",
                from: RUNNING,
                steps: &[(En(false), &[Close]), (I::Closed, &[Run(false)])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "24",
                case: "still stopping while the close runs",
                from: RUNNING,
                steps: &[(En(false), &[Close]), (En(false), &[])],
                end: ProxyState::Stopping,
            },
        ],
    );
}

#[test]
fn b25_enable_false_while_disabled_does_nothing() {
    check(
        NEVER,
        &[
            Row {
                b: "25",
                case: "disabled from the start",
                from: DISABLED,
                steps: &[(En(false), &[]), (En(false), &[])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "25",
                case: "disabled after running",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (I::Closed, &[Run(false)]),
                    (En(false), &[]),
                ],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn b26_false_then_true_creates_a_new_instance() {
    check(
        NEVER,
        &[
            Row {
                b: "26",
                case: "true after the close completed",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (I::Closed, &[Run(false)]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "26",
                case: "true while disabled from the start",
                from: DISABLED,
                steps: &[(En(true), &[Create]), (I::Created, &[Watch, Run(true)])],
                end: ProxyState::Running,
            },
        ],
    );
}

#[test]
fn b27_false_true_in_one_batch_restarts() {
    check(
        NEVER,
        &[
            Row {
                b: "27",
                case: "while running: close, running=false, then create again",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (En(true), &[]),
                    (I::Closed, &[Run(false), Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "27",
                case:
                    "while creating: the first create is abandoned unannounced, then create again",
                from: CREATING,
                steps: &[
                    (En(false), &[Abandon]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
        ],
    );
}

#[test]
fn b28_enable_notified_before_the_query_result_overrides_it() {
    check(
        NEVER,
        &[
            Row {
                b: "28",
                case: "notified true, query false",
                from: STARTING,
                steps: &[(En(true), &[]), (Query(Some(false)), &[Create])],
                end: ProxyState::Creating,
            },
            Row {
                b: "28",
                case: "notified false, query true",
                from: STARTING,
                steps: &[(En(false), &[]), (Query(Some(true)), &[])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "28",
                case: "the last of several notifications wins",
                from: STARTING,
                steps: &[(En(false), &[]), (En(true), &[]), (Query(None), &[Create])],
                end: ProxyState::Creating,
            },
        ],
    );
}

#[test]
fn b32_events_while_not_running_are_dropped_buffered_only_while_creating() {
    check(
        NEVER,
        &[
            Row {
                b: "32",
                case: "disabled: never delivered, not even to a later instance",
                from: DISABLED,
                steps: &[
                    (Ev("a"), &[]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "32",
                case: "failed: never delivered, not even to a later instance",
                from: FAILED,
                steps: &[
                    (Ev("a"), &[]),
                    (En(false), &[]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "32",
                case: "creating: buffered, delivered after running=true, in order",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (Ev("b"), &[]),
                    (I::Created, &[Watch, Run(true), Process("a")]),
                    (Done, &[Process("b")]),
                    (Done, &[]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "32",
                case: "creating: buffered events are dropped when create fails",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (CreateErr, &[]),
                    (En(false), &[]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "32",
                case: "starting after an enable=true notification: buffered like creating",
                from: STARTING,
                steps: &[
                    (Ev("a"), &[]),
                    (En(true), &[]),
                    (Ev("b"), &[]),
                    (Query(Some(false)), &[Create]),
                    (I::Created, &[Watch, Run(true), Process("b")]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "32",
                case: "creating: buffered events are dropped by a disable",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (En(false), &[Abandon]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
        ],
    );
}

#[test]
fn b33_nothing_after_a_disable_reaches_the_old_instance() {
    check(
        NEVER,
        &[
            Row {
                b: "33",
                case: "queued and later events are discarded; the in-flight call is dropped",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (Ev("b"), &[]),
                    (En(false), &[Close]),
                    (Ev("c"), &[]),
                    // A late result of the dropped call changes nothing.
                    (Done, &[]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Disabled,
            },
            Row {
                b: "33",
                case: "after a re-enable while stopping, events wait for the new instance",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (En(false), &[Close]),
                    (Ev("b"), &[]),
                    (En(true), &[]),
                    (Ev("c"), &[]),
                    (I::Closed, &[Run(false), Create]),
                    (I::Created, &[Watch, Run(true), Process("c")]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "33",
                case: "a failure stops delivery the same way",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (Ev("b"), &[]),
                    (SelfClosed, &[Close]),
                    (Ev("c"), &[]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Failed,
            },
        ],
    );
}

#[test]
fn b34_one_call_at_a_time_in_order_and_a_full_queue_fails_the_device() {
    check(
        NEVER,
        &[
            Row {
                b: "34",
                case: "queued events follow one at a time, in order",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (Ev("b"), &[]),
                    (Ev("c"), &[]),
                    (Ev("d"), &[]),
                    (Done, &[Process("b")]),
                    (Done, &[Process("c")]),
                    (Done, &[Process("d")]),
                    (Done, &[]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "34",
                case: "one event beyond the queue capacity fails a running device",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (Ev("b"), &[]),
                    (Ev("c"), &[]),
                    (Ev("d"), &[]),
                    (Ev("e"), &[Close]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "34",
                case: "a full queue while creating fails the attempt when create returns",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (Ev("b"), &[]),
                    (Ev("c"), &[]),
                    (Ev("d"), &[]),
                    (Ev("e"), &[]),
                    (I::Created, &[Close]),
                    (I::Closed, &[]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "34",
                case: "an input queue overflow fails a running device",
                from: RUNNING,
                steps: &[(Overflow(5, None), &[Close]), (I::Closed, &[Run(false)])],
                end: ProxyState::Failed,
            },
            Row {
                b: "34",
                case: "an enable=false lost in the overflow is applied: disabled, not failed",
                from: RUNNING,
                steps: &[
                    (Overflow(5, Some(false)), &[Close]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Disabled,
            },
            Row {
                b: "34",
                case: "an overflow while disabled changes nothing",
                from: DISABLED,
                steps: &[(Overflow(2, None), &[])],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn b36_engine_destruction_closes_and_registers_running_false() {
    check(
        NEVER,
        &[
            Row {
                b: "36",
                case: "running: close, then running=false",
                from: RUNNING,
                steps: &[(Destroy, &[Shut(Shutdown::CloseRunning)])],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "stopping after a disable: finish the close, then running=false",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (Destroy, &[Shut(Shutdown::AwaitClose { registered: true })]),
                ],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "stopping an unannounced instance: finish the close, no event",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (Overflow(5, None), &[]),
                    (I::Created, &[Close]),
                    (Destroy, &[Shut(Shutdown::AwaitClose { registered: false })]),
                ],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "creating: wait for create (section 7.6)",
                from: CREATING,
                steps: &[(Destroy, &[Shut(Shutdown::AwaitCreate)])],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "starting: nothing",
                from: STARTING,
                steps: &[(Destroy, &[Shut(Shutdown::Nothing)])],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "disabled: nothing",
                from: DISABLED,
                steps: &[(Destroy, &[Shut(Shutdown::Nothing)])],
                end: ProxyState::Closed,
            },
            Row {
                b: "36",
                case: "failed: nothing",
                from: FAILED,
                steps: &[(Destroy, &[Shut(Shutdown::Nothing)])],
                end: ProxyState::Closed,
            },
        ],
    );
}

#[test]
fn b37_create_failure_needs_false_then_true() {
    check(
        NEVER,
        &[
            Row {
                b: "37",
                case: "no running=true; true alone does nothing; false, true creates",
                from: CREATING,
                steps: &[
                    (CreateErr, &[]),
                    (En(true), &[]),
                    (En(false), &[]),
                    (En(true), &[Create]),
                ],
                end: ProxyState::Creating,
            },
            Row {
                b: "37",
                case: "failed until then",
                from: CREATING,
                steps: &[(CreateErr, &[]), (En(true), &[])],
                end: ProxyState::Failed,
            },
        ],
    );
}

#[test]
fn b38_self_closed_device_is_not_recreated_until_false_then_true() {
    check(
        NEVER,
        &[
            Row {
                b: "38",
                case: "running=false after the close; true alone does nothing",
                from: RUNNING,
                steps: &[
                    (SelfClosed, &[Close]),
                    (I::Closed, &[Run(false)]),
                    (En(true), &[]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "38",
                case: "false, true creates a new instance",
                from: FAILED,
                steps: &[
                    (En(false), &[]),
                    (En(true), &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "38",
                case: "a self-close while stopping is no second failure",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (SelfClosed, &[]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn b39_process_event_failure_fails_the_device() {
    check(
        NEVER,
        &[
            Row {
                b: "39",
                case: "closed, running=false, later events not delivered",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (Ev("b"), &[]),
                    (ProcErr, &[Close]),
                    (Ev("c"), &[]),
                    (I::Closed, &[Run(false)]),
                    (Ev("d"), &[]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "39",
                case: "recovery by false, true",
                from: RUNNING,
                steps: &[
                    (Ev("a"), &[Process("a")]),
                    (ProcErr, &[Close]),
                    (I::Closed, &[Run(false)]),
                    (En(false), &[]),
                    (En(true), &[Create]),
                ],
                end: ProxyState::Creating,
            },
        ],
    );
}

#[test]
fn b41_disable_during_create_never_registers_running_true() {
    check(
        NEVER,
        &[
            Row {
                b: "41",
                case:
                    "the create is abandoned (the shell closes what it produces); no running event",
                from: CREATING,
                steps: &[(En(false), &[Abandon])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "41",
                case: "an outcome of the abandoned create no longer counts",
                from: CREATING,
                steps: &[(En(false), &[Abandon]), (CreateErr, &[]), (I::Created, &[])],
                end: ProxyState::Disabled,
            },
            Row {
                b: "41",
                case: "disabled while creating, enabled again: a new create at once",
                from: CREATING,
                steps: &[(En(false), &[Abandon]), (En(true), &[Create])],
                end: ProxyState::Creating,
            },
            Row {
                b: "41",
                case: "failed while creating (queue full), then created: closed, no running event",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (Overflow(1, None), &[]),
                    (I::Created, &[Close]),
                    (I::Closed, &[]),
                ],
                end: ProxyState::Failed,
            },
        ],
    );
}

#[test]
fn s7_6_a_create_timeout_abandons_the_create_and_fails_the_device() {
    check(
        ON_FAILURE,
        &[
            Row {
                b: "7.6",
                case: "abandoned, failed, restarted after the backoff",
                from: CREATING,
                steps: &[
                    (Ev("a"), &[]),
                    (CreateTimeout, &[Abandon, Arm(500)]),
                    (After(500), &[]),
                    (Restart, &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "7.6",
                case: "a late timeout after the create returned is ignored",
                from: RUNNING,
                steps: &[(CreateTimeout, &[])],
                end: ProxyState::Running,
            },
        ],
    );
    check(
        NEVER,
        &[Row {
            b: "7.6",
            case: "restart never: failed until false, true",
            from: CREATING,
            steps: &[
                (CreateTimeout, &[Abandon]),
                (En(true), &[]),
                (En(false), &[]),
                (En(true), &[Create]),
            ],
            end: ProxyState::Creating,
        }],
    );
}

#[test]
fn s7_5_restart_on_failure_backs_off_and_stops_at_the_crash_loop_limit() {
    check(
        ON_FAILURE,
        &[
            Row {
                b: "7.5",
                case: "a failed running device is re-created after the backoff",
                from: RUNNING,
                steps: &[
                    (SelfClosed, &[Close]),
                    (I::Closed, &[Run(false), Arm(500)]),
                    (After(500), &[]),
                    (Restart, &[Create]),
                    (I::Created, &[Watch, Run(true)]),
                ],
                end: ProxyState::Running,
            },
            Row {
                b: "7.5",
                case: "the backoff doubles up to its cap; more than 3 failures give up",
                from: CREATING,
                steps: &[
                    (CreateErr, &[Arm(500)]),
                    (Restart, &[Create]),
                    (CreateErr, &[Arm(1000)]),
                    (Restart, &[Create]),
                    (CreateErr, &[Arm(1500)]),
                    (Restart, &[Create]),
                    (CreateErr, &[]),
                    (Restart, &[]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "7.5",
                case: "failures older than the window are forgotten",
                from: CREATING,
                steps: &[
                    (CreateErr, &[Arm(500)]),
                    (Restart, &[Create]),
                    (After(61_000), &[]),
                    (CreateErr, &[Arm(61_500)]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "7.5",
                case: "enable=false cancels the restart and clears the count",
                from: CREATING,
                steps: &[
                    (CreateErr, &[Arm(500)]),
                    (Restart, &[Create]),
                    (CreateErr, &[Arm(1000)]),
                    (En(false), &[Disarm]),
                    (Restart, &[]),
                    (En(true), &[Create]),
                    (CreateErr, &[Arm(500)]),
                ],
                end: ProxyState::Failed,
            },
            Row {
                b: "7.5",
                case: "a failure after a disable is not counted as a restart",
                from: RUNNING,
                steps: &[
                    (En(false), &[Close]),
                    (SelfClosed, &[]),
                    (I::Closed, &[Run(false)]),
                ],
                end: ProxyState::Disabled,
            },
        ],
    );
}

#[test]
fn proxy_state_round_trips_through_its_atomic_encoding() {
    let states = [
        ProxyState::Starting,
        ProxyState::Disabled,
        ProxyState::Creating,
        ProxyState::Running,
        ProxyState::Stopping,
        ProxyState::Failed,
        ProxyState::Closed,
    ];
    for state in states {
        assert_eq!(ProxyState::try_from(u8::from(state)), Ok(state));
    }
    assert_eq!(u8::from(ProxyState::Starting), 0, "the atomic's default");
    assert_eq!(ProxyState::try_from(7), Err(7));
}

#[test]
fn b40_a_panic_in_a_device_future_becomes_a_device_error() {
    let text = futures::executor::block_on(super::guard(async { panic!("boom") }));
    assert_eq!(
        text,
        Err(crate::device::DeviceError::Panicked("boom".to_owned()))
    );
    let formatted = futures::executor::block_on(super::guard(async {
        let n = 7;
        panic!("boom {n}")
    }));
    assert_eq!(
        formatted,
        Err(crate::device::DeviceError::Panicked("boom 7".to_owned()))
    );
}

/// The shell is the host's one catch of device panics (behaviour 40): driven with an
/// in-memory device and client on a current-thread runtime, synchronised on the
/// `running` registrations.
mod shell {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use gateway_model::{Event, Payload, QueryParams, QueryResult, RegisterEvent};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::super::{DeviceProxy, ProxyInput, SharedState};
    use crate::device::{
        ClientError, DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance,
    };
    use crate::spec::{DeviceSpec, RestartPolicy};

    /// Forwards every registered `running` value.
    struct Recorder(mpsc::UnboundedSender<bool>);

    impl Recorder {
        fn note(&self, events: &[RegisterEvent]) {
            for event in events {
                let value = event.payload.as_ref().and_then(Payload::json_value);
                if let Some(running) = value.and_then(|v| v.as_bool()) {
                    let _ = self.0.send(running);
                }
            }
        }
    }

    impl DeviceClient for Recorder {
        fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
            self.note(&events);
            Box::pin(async { Ok(()) })
        }

        // The shutdown's `running=false` waits for the server's answer.
        fn register_with_response(
            &self,
            events: Vec<RegisterEvent>,
        ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
            self.note(&events);
            Box::pin(async { Ok(None) })
        }

        fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
            Box::pin(async { Ok(QueryResult::default()) })
        }
    }

    #[derive(Default)]
    struct Factory {
        /// `create` panics before returning its future.
        panic_create: AtomicBool,
        /// The instances' `closed` future panics.
        panic_closed: bool,
    }

    impl DeviceFactory for Factory {
        fn device_type(&self) -> &str {
            "T"
        }

        fn json_schema_id(&self) -> Option<&str> {
            None
        }

        fn json_schema(&self) -> Option<&serde_json::Value> {
            None
        }

        fn create(
            &self,
            _conf: serde_json::Value,
            _context: DeviceContext,
        ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
            assert!(
                !self.panic_create.load(Ordering::SeqCst),
                "panic in the synchronous part of create"
            );
            let instance = Instance {
                panic_closed: self.panic_closed,
                closed: CancellationToken::new(),
            };
            Box::pin(async move { Ok(Box::new(instance) as Box<dyn DeviceInstance>) })
        }
    }

    struct Instance {
        panic_closed: bool,
        closed: CancellationToken,
    }

    impl DeviceInstance for Instance {
        fn process_event(&self, _event: Event) -> BoxFuture<'_, Result<(), DeviceError>> {
            Box::pin(async { Ok(()) })
        }

        fn close(&self) -> BoxFuture<'_, ()> {
            self.closed.cancel();
            Box::pin(async {})
        }

        fn closed(&self) -> BoxFuture<'_, ()> {
            if self.panic_closed {
                Box::pin(async { panic!("panic while waiting for the close") })
            } else {
                Box::pin(self.closed.cancelled())
            }
        }
    }

    /// A running proxy task and its ends.
    struct Proxy {
        input: mpsc::Sender<ProxyInput>,
        running: mpsc::UnboundedReceiver<bool>,
        cancel: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Proxy {
        fn start(factory: Arc<Factory>) -> Self {
            let device = DeviceSpec {
                device_type: "T".to_owned(),
                name: "D".to_owned(),
                conf: serde_json::json!({}),
                factory,
                restart: RestartPolicy::Never,
                event_queue_size: 8,
                create_timeout: crate::spec::DEFAULT_CREATE_TIMEOUT,
                close_timeout: crate::spec::DEFAULT_CLOSE_TIMEOUT,
            };
            let (tx, running) = mpsc::unbounded_channel();
            let (input, rx) = mpsc::channel(16);
            let cancel = CancellationToken::new();
            let proxy = DeviceProxy::new(
                &device,
                super::PREFIX.iter().map(|s| (*s).to_owned()).collect(),
                Arc::new(Recorder(tx)),
                tracing::Span::none(),
                rx,
                Arc::new(SharedState::default()),
                cancel.clone(),
            );
            let task = tokio::spawn(proxy.run());
            Self {
                input,
                running,
                cancel,
                task,
            }
        }

        async fn send(&self, input: ProxyInput) {
            self.input.send(input).await.expect("the proxy runs");
        }

        /// The next `running` registration (the timeout only turns a hang into a
        /// failure).
        async fn next_running(&mut self) -> bool {
            tokio::time::timeout(Duration::from_secs(10), self.running.recv())
                .await
                .expect("a running registration")
                .expect("the proxy holds the client")
        }

        /// Destroys the engine side; the task must end normally, not by a panic.
        async fn stop(self) {
            self.cancel.cancel();
            self.task.await.expect("the proxy task did not panic");
        }
    }

    fn block_on(future: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(future);
    }

    #[test]
    fn b40_a_panic_in_the_synchronous_part_of_create_fails_the_attempt() {
        block_on(async {
            let factory = Arc::new(Factory::default());
            factory.panic_create.store(true, Ordering::SeqCst);
            let mut proxy = Proxy::start(factory.clone());
            assert!(!proxy.next_running().await);
            proxy.send(ProxyInput::QueryResult(Some(true))).await;
            // The attempt failed (FAILED): false then true creates again.
            factory.panic_create.store(false, Ordering::SeqCst);
            proxy.send(ProxyInput::Enable(false)).await;
            proxy.send(ProxyInput::Enable(true)).await;
            assert!(proxy.next_running().await);
            proxy.stop().await;
        });
    }

    #[test]
    fn b40_a_panic_in_closed_counts_as_the_device_closing_itself() {
        block_on(async {
            let factory = Arc::new(Factory {
                panic_closed: true,
                ..Factory::default()
            });
            let mut proxy = Proxy::start(factory);
            assert!(!proxy.next_running().await);
            proxy.send(ProxyInput::QueryResult(Some(true))).await;
            assert!(proxy.next_running().await);
            // Failed without any enable=false: the instance is closed, running=false.
            assert!(!proxy.next_running().await);
            proxy.stop().await;
        });
    }
}

/// Issue 12: the machine's inputs and actions carry events boxed, so each device's
/// action queue (a few slots, kept for the proxy's life) stays small.
#[test]
fn actions_and_inputs_stay_small() {
    let action = std::mem::size_of::<Action>();
    let input = std::mem::size_of::<Input>();
    println!("action {action} bytes, input {input} bytes");
    assert!(action <= 32, "Action is {action} bytes");
    assert!(input <= 48, "Input is {input} bytes");
}
