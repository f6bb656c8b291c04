//! The device proxy's state machine (`docs/gateway-semantics.md` section 7): every
//! decision of the proxy, with no tokio, no futures and no clock.
//!
//! The async shell (`super`) turns the engine's inputs, the outcome of the one
//! in-flight device call and the restart timer into [`Input`]s, calls
//! [`Machine::handle`] with the current time, and then carries out the
//! [`Action`]s that [`Machine::poll_action`] yields, in order. What only makes sense
//! in one phase (an enable notification while starting, an enable=false or a failure
//! while creating, the failure reason, the restart deadline) is data of that phase.

use std::collections::VecDeque;
use std::time::Instant;

use gateway_model::Event;

use crate::spec::RestartPolicy;

/// The observable state of a device proxy (`docs/gateway-semantics.md` section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    /// Registering `running=false`, waiting for the enable query.
    Starting,
    /// No instance; enable is not true.
    Disabled,
    /// `create` in progress.
    Creating,
    /// An instance is open and receives events.
    Running,
    /// The instance is closing.
    Stopping,
    /// The instance failed; waiting for `enable=false` (or a restart).
    Failed,
    /// The engine was destroyed.
    Closed,
}

/// What a proxy is configured with (from its device entry).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Events buffered for the instance at most (`event_queue_size`, at least 1).
    pub(crate) queue_capacity: usize,
    /// What happens after a failure (section 7.5).
    pub(crate) restart: RestartPolicy,
    /// Register `running=false` first (behaviour 18; the `seeds` layout). hat-gateway
    /// 0.6.43 and later do not (`event_types: hat-gateway-0.6`).
    pub(crate) initial_running_false: bool,
}

/// Something that happened, as the shell reports it.
#[derive(Debug)]
pub(crate) enum Input {
    /// A `system/enable` event, already interpreted.
    Enable(bool),
    /// The start-up query's answer for this device (`None`: no enable event).
    QueryResult(Option<bool>),
    /// Any other event with this device's prefix. Boxed as the engine sent it: the
    /// queue and [`Action`] then hold a pointer, not an event (a device's action
    /// queue of 4 slots was about 0.5 KiB with inline events).
    Event(Box<Event>),
    /// The engine could not enqueue `dropped` inputs (the input queue was full);
    /// `lost_enable` is the last enable value among them.
    QueueOverflow {
        /// How many inputs were dropped.
        dropped: u64,
        /// The last dropped enable value, applied now.
        lost_enable: Option<bool>,
    },
    /// `create` returned an instance. The shell hands over every input it received
    /// before this one first: they count as received while creating (behaviour 41).
    Created,
    /// `create` failed or panicked.
    CreateFailed(String),
    /// `create` did not finish within the device's `create_timeout`.
    CreateTimedOut,
    /// `process_event` returned.
    Processed,
    /// `process_event` failed or panicked.
    ProcessFailed(String),
    /// The `close` started by [`Action::Close`] finished (or was given up on).
    CloseDone,
    /// The running instance closed by itself.
    SelfClosed,
    /// The deadline of [`Action::ArmRestart`] passed.
    RestartDue,
}

/// What the shell must do, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Call the factory's `create`; it becomes the in-flight operation and ends in
    /// [`Input::Created`], [`Input::CreateFailed`] or [`Input::CreateTimedOut`].
    Create,
    /// Stop waiting for the in-flight `create`: nothing it yields reaches the
    /// machine (an instance it still produces is closed by the shell, with no
    /// `running` event).
    AbandonCreate,
    /// Start `process_event` with this event on the instance; it ends in
    /// [`Input::Processed`] or [`Input::ProcessFailed`]. Never while another call runs.
    Process(Box<Event>),
    /// Stop watching the instance, drop an in-flight `process_event` (nothing more
    /// reaches the instance) and close it; ends in [`Input::CloseDone`].
    Close,
    /// The instance just created stays: report it closing by itself
    /// ([`Input::SelfClosed`]).
    Watch,
    /// Register `running` with this value (fire-and-forget; a failure is only logged,
    /// behaviour 42).
    RegisterRunning(bool),
    /// Report [`Input::RestartDue`] at this time (replacing a timer already armed).
    ArmRestart(Instant),
    /// Forget the restart timer.
    DisarmRestart,
}

/// What the shell does when the engine is destroyed (section 7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Nothing exists: nothing to do.
    Nothing,
    /// `create` is in flight: wait for it within the grace time and close an instance
    /// it produces (no `running` event: none was registered).
    AwaitCreate,
    /// `close` is in flight: wait for it, then register `running=false` if
    /// `registered`.
    AwaitClose {
        /// `running=true` was registered for the closing instance.
        registered: bool,
    },
    /// An instance runs: drop an in-flight `process_event`, close the instance, then
    /// register `running=false`.
    CloseRunning,
}

/// What happened to one create attempt, and the instance it produced, since `create`
/// was called.
#[derive(Debug, Default)]
struct Attempt {
    /// An enable=false was applied meanwhile: the attempt's outcome is forgiven
    /// (FAILED + enable=false = DISABLED) and only the latest enable decides what
    /// follows.
    disabled: bool,
    /// Why the attempt or its instance failed (the first reason wins).
    failure: Option<String>,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the start-up query result.
    Starting {
        /// An enable notification arrived: it wins over the query result (behaviour 28).
        notified: bool,
    },
    Disabled,
    Creating(Attempt),
    Running {
        /// A `process_event` is in flight.
        processing: bool,
    },
    Stopping {
        /// `running=true` was registered for the closing instance, so `running=false`
        /// follows the close.
        registered: bool,
        attempt: Attempt,
    },
    Failed {
        reason: String,
        /// When the restart is due (`restart: on-failure`, not given up).
        restart_at: Option<Instant>,
    },
    Closed,
}

/// The decisions of one device proxy. Owned by the proxy's task.
#[derive(Debug)]
pub(crate) struct Machine {
    config: Config,
    phase: Phase,
    /// The latest enable value (false until the first enable event or query result).
    enabled: bool,
    /// Events waiting for the current or next instance. Filled only while the device
    /// is wanted (enabled, no failure pending); empty in DISABLED and FAILED.
    queue: VecDeque<Box<Event>>,
    /// Events dropped because the queue was full (logged when the device fails).
    dropped_events: u64,
    /// Failure times inside the restart window. Unlike everything phase-specific this
    /// spans phases: it carries over a restart and through a disable of a running or
    /// creating device; only enable=false in FAILED clears it.
    recent_failures: VecDeque<Instant>,
    /// Actions not yet taken by the shell.
    actions: VecDeque<Action>,
}

impl Machine {
    /// A proxy in STARTING; its first action is the seed `running=false`
    /// (behaviour 18) unless `config.initial_running_false` is off.
    pub(crate) fn new(config: Config) -> Self {
        let config = Config {
            queue_capacity: config.queue_capacity.max(1),
            ..config
        };
        Self {
            config,
            phase: Phase::Starting { notified: false },
            enabled: false,
            queue: VecDeque::new(),
            dropped_events: 0,
            recent_failures: VecDeque::new(),
            actions: if config.initial_running_false {
                VecDeque::from([Action::RegisterRunning(false)])
            } else {
                VecDeque::new()
            },
        }
    }

    /// What the proxy was configured with.
    pub(crate) fn config(&self) -> Config {
        self.config
    }

    /// The observable state.
    pub(crate) fn state(&self) -> ProxyState {
        match self.phase {
            Phase::Starting { .. } => ProxyState::Starting,
            Phase::Disabled => ProxyState::Disabled,
            Phase::Creating(_) => ProxyState::Creating,
            Phase::Running { .. } => ProxyState::Running,
            Phase::Stopping { .. } => ProxyState::Stopping,
            Phase::Failed { .. } => ProxyState::Failed,
            Phase::Closed => ProxyState::Closed,
        }
    }

    /// The latest enable value applied.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Events waiting in the machine's queue.
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Events and inputs dropped because a queue was full, since the machine started.
    pub(crate) fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Why the device failed, in FAILED.
    pub(crate) fn failure(&self) -> Option<&str> {
        match &self.phase {
            Phase::Failed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The next action to carry out, if any.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Applies one input at time `now`; the resulting actions are queued for
    /// [`poll_action`](Self::poll_action).
    pub(crate) fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Enable(enabled) => self.on_enable(enabled),
            Input::QueryResult(enabled) => self.on_query_result(enabled),
            Input::Event(event) => self.on_event(event),
            Input::QueueOverflow {
                dropped,
                lost_enable,
            } => self.on_queue_overflow(dropped, lost_enable),
            Input::Created => self.on_created(),
            Input::CreateFailed(reason) => match self.take_phase() {
                Phase::Creating(mut attempt) => {
                    tracing::error!(error = %reason, "device create failed");
                    attempt.failure.get_or_insert(reason);
                    self.settle(attempt, now);
                }
                other => self.phase = other,
            },
            Input::CreateTimedOut => match self.take_phase() {
                Phase::Creating(mut attempt) => {
                    tracing::error!("device create timed out; abandoning it");
                    self.actions.push_back(Action::AbandonCreate);
                    attempt
                        .failure
                        .get_or_insert_with(|| "create timed out".to_owned());
                    self.settle(attempt, now);
                }
                other => self.phase = other,
            },
            Input::Processed => {
                if let Phase::Running { processing } = &mut self.phase {
                    *processing = false;
                }
            }
            Input::ProcessFailed(reason) => {
                if matches!(self.phase, Phase::Running { .. }) {
                    tracing::error!(error = %reason, "device process_event failed");
                    self.fail(reason);
                }
            }
            Input::CloseDone => match self.take_phase() {
                Phase::Stopping {
                    registered,
                    attempt,
                } => {
                    tracing::info!("device closed");
                    if registered {
                        self.actions.push_back(Action::RegisterRunning(false));
                    }
                    self.settle(attempt, now);
                }
                other => self.phase = other,
            },
            Input::SelfClosed => {
                if matches!(self.phase, Phase::Running { .. }) {
                    tracing::warn!("device closed itself");
                    self.fail("device closed itself".to_owned());
                }
            }
            Input::RestartDue => {
                if matches!(
                    self.phase,
                    Phase::Failed {
                        restart_at: Some(_),
                        ..
                    }
                ) && self.enabled
                {
                    tracing::info!("restarting device after failure");
                    self.start_create();
                }
            }
        }
        self.pump();
    }

    /// The engine is destroyed: the proxy ends in CLOSED; what the shell still has to
    /// do is returned (section 7.6).
    pub(crate) fn shutdown(&mut self) -> Shutdown {
        self.queue.clear();
        self.actions.clear();
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Creating(_) => Shutdown::AwaitCreate,
            Phase::Stopping { registered, .. } => Shutdown::AwaitClose { registered },
            Phase::Running { .. } => Shutdown::CloseRunning,
            Phase::Starting { .. } | Phase::Disabled | Phase::Failed { .. } | Phase::Closed => {
                Shutdown::Nothing
            }
        }
    }

    /// Takes the phase out for a transition by value; the caller must set the next
    /// one (or put back a phase it does not handle).
    fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Closed)
    }

    fn on_enable(&mut self, enabled: bool) {
        tracing::debug!(enabled, state = ?self.state(), "enable");
        self.enabled = enabled;
        if !enabled {
            self.queue.clear();
        }
        match (&mut self.phase, enabled) {
            (Phase::Starting { notified }, _) => *notified = true,
            (Phase::Disabled, true) => self.start_create(),
            (Phase::Running { .. }, false) => self.stop(Attempt {
                disabled: true,
                failure: None,
            }),
            (Phase::Failed { restart_at, .. }, false) => {
                if restart_at.is_some() {
                    self.actions.push_back(Action::DisarmRestart);
                }
                self.recent_failures.clear();
                self.phase = Phase::Disabled;
            }
            (Phase::Failed { reason, .. }, true) => {
                tracing::debug!(%reason, "device failed: enable=true alone does not re-create it");
            }
            // A create is not waited for (behaviour 41): no `running=true` for it,
            // and a later enable=true creates again at once.
            (Phase::Creating(_), false) => {
                tracing::info!("device disabled while creating; abandoning the create");
                self.actions.push_back(Action::AbandonCreate);
                self.phase = Phase::Disabled;
            }
            // The outcome is decided when `close` returns.
            (Phase::Stopping { attempt, .. }, false) => attempt.disabled = true,
            // Nothing to do: re-enable while wanted, re-disable while not, or closed.
            _ => {}
        }
    }

    fn on_query_result(&mut self, enabled: Option<bool>) {
        let Phase::Starting { notified } = self.phase else {
            return;
        };
        // A notification received while the query was pending wins (behaviour 28).
        if !notified {
            self.enabled = enabled.unwrap_or(false);
        }
        tracing::debug!(enabled = self.enabled, "start-up enable state");
        if self.enabled {
            self.start_create();
        } else {
            self.queue.clear();
            self.phase = Phase::Disabled;
        }
    }

    fn on_event(&mut self, event: Box<Event>) {
        let wanted = self.enabled
            && match &self.phase {
                Phase::Starting { .. } | Phase::Running { .. } => true,
                Phase::Creating(attempt) | Phase::Stopping { attempt, .. } => {
                    attempt.failure.is_none()
                }
                Phase::Disabled | Phase::Failed { .. } | Phase::Closed => false,
            };
        if !wanted {
            tracing::trace!(event_type = ?event.event_type, "event discarded: device not running");
            return;
        }
        if self.queue.len() < self.config.queue_capacity {
            self.queue.push_back(event);
            return;
        }
        self.dropped_events += 1;
        self.fail_overflow();
    }

    fn on_queue_overflow(&mut self, dropped: u64, lost_enable: Option<bool>) {
        self.dropped_events += dropped;
        if let Some(enabled) = lost_enable {
            // An enable change was lost with the overflow; apply it now.
            self.on_enable(enabled);
        }
        if matches!(self.phase, Phase::Running { .. } | Phase::Creating(_)) {
            self.fail_overflow();
        } else {
            tracing::warn!(dropped, "input queue full; inputs dropped");
        }
    }

    /// A device that stops consuming is failed, not waited for (section 7.4). Only a
    /// running or creating device, and only once per attempt.
    fn fail_overflow(&mut self) {
        let already = match &self.phase {
            Phase::Running { .. } => false,
            Phase::Creating(attempt) => attempt.failure.is_some(),
            _ => true,
        };
        if already {
            return;
        }
        let capacity = self.config.queue_capacity;
        tracing::error!(
            capacity,
            queued = self.queue.len(),
            dropped = self.dropped_events + self.queue.len() as u64,
            "device failed: event queue full"
        );
        self.fail(format!(
            "event queue full (capacity {capacity}): device stopped consuming events"
        ));
    }

    /// Marks the running instance or the creating attempt failed; a running instance
    /// is closed at once, a creating one when `create` returns.
    fn fail(&mut self, reason: String) {
        self.queue.clear();
        match &mut self.phase {
            Phase::Running { .. } => self.stop(Attempt {
                disabled: false,
                failure: Some(reason),
            }),
            Phase::Creating(attempt) => attempt.failure = Some(reason),
            _ => {}
        }
    }

    fn on_created(&mut self) {
        match self.take_phase() {
            Phase::Creating(attempt) if attempt.disabled || attempt.failure.is_some() => {
                // Disabled or failed while creating: no `running=true` was registered,
                // so none is registered now either (behaviour 41).
                tracing::info!("device created after it was disabled; closing it");
                self.phase = Phase::Stopping {
                    registered: false,
                    attempt,
                };
                self.actions.push_back(Action::Close);
            }
            Phase::Creating(_) => {
                tracing::info!("device created");
                self.phase = Phase::Running { processing: false };
                // Events buffered while creating stay queued; they follow the
                // registration (behaviour 32).
                self.actions.push_back(Action::Watch);
                self.actions.push_back(Action::RegisterRunning(true));
            }
            other => self.phase = other,
        }
    }

    /// RUNNING → STOPPING: nothing more is delivered and the instance is closed.
    fn stop(&mut self, attempt: Attempt) {
        self.queue.clear();
        self.phase = Phase::Stopping {
            registered: true,
            attempt,
        };
        self.actions.push_back(Action::Close);
    }

    /// No instance and no operation: decide the next phase.
    fn settle(&mut self, attempt: Attempt, now: Instant) {
        if attempt.disabled {
            // A disable arrived since this attempt started: failures are forgiven
            // and a later enable=true re-creates.
            if self.enabled {
                self.start_create();
            } else {
                self.queue.clear();
                self.phase = Phase::Disabled;
            }
        } else if let Some(reason) = attempt.failure {
            self.queue.clear();
            let restart_at = self.schedule_restart(&reason, now);
            self.phase = Phase::Failed { reason, restart_at };
        } else if self.enabled {
            self.start_create();
        } else {
            self.phase = Phase::Disabled;
        }
    }

    /// Section 7.5: counts the failure and, unless the crash-loop limit is passed,
    /// arms the restart timer with the backoff.
    fn schedule_restart(&mut self, reason: &str, now: Instant) -> Option<Instant> {
        let RestartPolicy::OnFailure {
            initial_backoff,
            max_backoff,
            max_restarts,
            window,
        } = self.config.restart
        else {
            tracing::warn!(reason, "device failed; waiting for enable=false");
            return None;
        };
        while self
            .recent_failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            self.recent_failures.pop_front();
        }
        self.recent_failures.push_back(now);
        let failures = u32::try_from(self.recent_failures.len()).unwrap_or(u32::MAX);
        if failures > max_restarts {
            tracing::error!(
                reason,
                failures,
                window_s = window.as_secs_f64(),
                "device crash loop: giving up restarts; waiting for enable=false"
            );
            return None;
        }
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        let backoff = initial_backoff.saturating_mul(factor).min(max_backoff);
        tracing::warn!(
            reason,
            backoff_s = backoff.as_secs_f64(),
            failures,
            "device failed; restarting after backoff"
        );
        let Some(at) = now.checked_add(backoff) else {
            tracing::error!(
                reason,
                "restart backoff out of range; waiting for enable=false"
            );
            return None;
        };
        self.actions.push_back(Action::ArmRestart(at));
        Some(at)
    }

    fn start_create(&mut self) {
        self.phase = Phase::Creating(Attempt::default());
        self.actions.push_back(Action::Create);
    }

    /// One event at a time: the next `process_event` starts when the previous one
    /// returned (behaviour 34).
    fn pump(&mut self) {
        if let Phase::Running { processing } = &mut self.phase {
            if !*processing {
                if let Some(event) = self.queue.pop_front() {
                    *processing = true;
                    self.actions.push_back(Action::Process(event));
                }
            }
        }
    }
}
