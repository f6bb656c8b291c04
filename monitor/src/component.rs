//! hat's `hat.monitor.component` as a sans-IO state machine: no sockets, no clock.
//!
//! A component is *active* (its work runs) only while it is ready and the blessing
//! response token it sent equals the master's current request token, as the Monitor
//! Server reports it back. The cycle, as hat-monitor 0.8.23 runs it:
//!
//! 1. wait until ready and the master's request carries a token; answer with that
//!    token (a `MsgClient` with `blessingRes.token` set);
//! 2. wait until the server reports our response back; if the request still has the
//!    same token, [`Action::Start`] (else back to 1, a newer request came meanwhile);
//! 3. while ready and the request token is still ours, keep working; otherwise
//!    [`Action::Stop`]: the owner stops working first and then calls
//!    [`Component::runner_stopped`], and only then is the token cleared (a
//!    `MsgClient` with no token), so the master never blesses another member of the
//!    group while this one still works.
//!
//! Inputs: [`Component::on_server`] (every `MsgServer`), [`Component::set_ready`],
//! [`Component::runner_stopped`]. Each returns the [`Action`]s to carry out, in order.

use crate::message::{BlessingRes, ComponentInfo, MsgClient, MsgServer};

/// What the owner of a [`Component`] must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the Monitor Server.
    Send(MsgClient),
    /// The component became active: start working.
    Start,
    /// The component is no longer active: stop working, then call
    /// [`Component::runner_stopped`].
    Stop,
}

/// Where the component is in its blessing cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    /// Waiting to be ready and to get a request token.
    Waiting,
    /// Answered a request token; waiting for the server to report the answer back.
    Confirming,
    /// Active: the owner is working.
    Running,
    /// [`Action::Stop`] was given; waiting for [`Component::runner_stopped`].
    Stopping,
}

/// The component side of the blessing protocol for one connection.
#[derive(Debug, Clone)]
pub struct Component {
    name: String,
    group: String,
    data: String,
    res: BlessingRes,
    sent: Option<BlessingRes>,
    info: Option<ComponentInfo>,
    components: Vec<ComponentInfo>,
    state: ComponentState,
}

impl Component {
    /// A component named `name` in `group`, publishing `data` (JSON text) to the other
    /// components; not ready. The returned actions hold the first `MsgClient` (no
    /// token, not ready), which hat's client sends as soon as it connects.
    pub fn new(
        name: impl Into<String>,
        group: impl Into<String>,
        data: impl Into<String>,
    ) -> (Self, Vec<Action>) {
        let mut component = Self {
            name: name.into(),
            group: group.into(),
            data: data.into(),
            res: BlessingRes::INITIAL,
            sent: None,
            info: None,
            components: Vec::new(),
            state: ComponentState::Waiting,
        };
        let mut actions = Vec::new();
        component.send_res(&mut actions);
        (component, actions)
    }

    /// The current phase.
    pub fn state(&self) -> ComponentState {
        self.state
    }

    /// True while the owner should be working ([`Action::Start`] given, no
    /// [`Action::Stop`] since).
    pub fn is_active(&self) -> bool {
        self.state == ComponentState::Running
    }

    /// Whether the component declared itself ready.
    pub fn ready(&self) -> bool {
        self.res.ready
    }

    /// The blessing response as last decided (and sent).
    pub fn blessing_res(&self) -> BlessingRes {
        self.res
    }

    /// This component's own entry in the last `MsgServer`.
    pub fn info(&self) -> Option<&ComponentInfo> {
        self.info.as_ref()
    }

    /// Every component of the last `MsgServer` (all groups, all Monitor Servers).
    pub fn components(&self) -> &[ComponentInfo] {
        &self.components
    }

    /// Declares the component ready (or not). Not ready stops an active component.
    pub fn set_ready(&mut self, ready: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.res.ready != ready {
            self.res.ready = ready;
            self.send_res(&mut actions);
            self.evaluate(&mut actions);
        }
        actions
    }

    /// A `MsgServer` arrived. Returns whether the state (own entry or component
    /// list) changed, and the actions.
    pub fn on_server(&mut self, msg: MsgServer) -> (bool, Vec<Action>) {
        let info = msg.own_info().cloned();
        let changed = info != self.info || msg.components != self.components;
        self.info = info;
        self.components = msg.components;
        let mut actions = Vec::new();
        if changed {
            self.evaluate(&mut actions);
        }
        (changed, actions)
    }

    /// The owner has stopped working after [`Action::Stop`]: the token is cleared now.
    /// Ignored in any other state.
    pub fn runner_stopped(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == ComponentState::Stopping {
            self.res.token = None;
            self.send_res(&mut actions);
            self.state = ComponentState::Waiting;
            self.evaluate(&mut actions);
        }
        actions
    }

    fn req_token(&self) -> Option<i64> {
        self.info.as_ref().and_then(|i| i.blessing_req.token)
    }

    /// Runs the cycle as far as the current inputs allow. Every transition either
    /// ends the loop or moves towards a state that ends it (Waiting -> Confirming
    /// needs a request token and ready, which Confirming -> Waiting never has both of
    /// with an unchanged answer), so it terminates.
    fn evaluate(&mut self, actions: &mut Vec<Action>) {
        loop {
            match self.state {
                ComponentState::Waiting => {
                    let Some(token) = self.req_token().filter(|_| self.res.ready) else {
                        return;
                    };
                    if self.res.token != Some(token) {
                        self.res.token = Some(token);
                        self.send_res(actions);
                    }
                    self.state = ComponentState::Confirming;
                }
                ComponentState::Confirming => {
                    if !self.res.ready || self.res.token.is_none() {
                        self.state = ComponentState::Waiting;
                        // Waiting returns: not ready (a token is always set here).
                        continue;
                    }
                    let Some(info) = &self.info else { return };
                    if info.blessing_res.token != self.res.token {
                        return;
                    }
                    if info.blessing_req.token == self.res.token {
                        self.state = ComponentState::Running;
                        actions.push(Action::Start);
                        return;
                    }
                    // A newer request (or none) came meanwhile: answer it afresh.
                    self.state = ComponentState::Waiting;
                    if self.req_token().is_none() {
                        return;
                    }
                }
                ComponentState::Running => {
                    let token = self.req_token();
                    if self.res.ready && token.is_some() && token == self.res.token {
                        return;
                    }
                    self.state = ComponentState::Stopping;
                    actions.push(Action::Stop);
                    return;
                }
                ComponentState::Stopping => return,
            }
        }
    }

    /// Sends the current response unless it is what was sent last (hat's client
    /// sends only changes).
    fn send_res(&mut self, actions: &mut Vec<Action>) {
        if self.sent == Some(self.res) {
            return;
        }
        self.sent = Some(self.res);
        actions.push(Action::Send(MsgClient {
            name: self.name.clone(),
            group: self.group.clone(),
            data: self.data.clone(),
            blessing_res: self.res,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::BlessingReq;

    const CID: i64 = 3;

    fn own(req: Option<i64>, res: Option<i64>) -> ComponentInfo {
        ComponentInfo {
            cid: CID,
            mid: 0,
            name: Some("gw".into()),
            group: Some("gateway".into()),
            data: serde_json::Value::Null,
            rank: 1,
            blessing_req: BlessingReq {
                token: req,
                timestamp: None,
            },
            blessing_res: BlessingRes {
                token: res,
                ready: true,
            },
        }
    }

    fn server(req: Option<i64>, res: Option<i64>) -> MsgServer {
        MsgServer {
            cid: CID,
            mid: 0,
            components: vec![own(req, res)],
        }
    }

    fn sent_tokens(actions: &[Action]) -> Vec<(Option<i64>, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(m) => Some((m.blessing_res.token, m.blessing_res.ready)),
                _ => None,
            })
            .collect()
    }

    fn ready_component() -> Component {
        let (mut c, actions) = Component::new("gw", "gateway", "null");
        assert_eq!(sent_tokens(&actions), [(None, false)]);
        assert_eq!(sent_tokens(&c.set_ready(true)), [(None, true)]);
        c
    }

    #[test]
    fn first_message_has_name_group_data_and_no_token() {
        let (_, actions) = Component::new("gw", "gateway", "{\"a\":1}");
        assert_eq!(
            actions,
            [Action::Send(MsgClient {
                name: "gw".into(),
                group: "gateway".into(),
                data: "{\"a\":1}".into(),
                blessing_res: BlessingRes::INITIAL,
            })]
        );
    }

    #[test]
    fn blessing_is_answered_then_confirmed_before_start() {
        let mut c = ready_component();
        let (changed, actions) = c.on_server(server(Some(5), None));
        assert!(changed);
        assert_eq!(sent_tokens(&actions), [(Some(5), true)]);
        assert!(!actions.contains(&Action::Start), "not before the echo");
        assert_eq!(c.state(), ComponentState::Confirming);
        let (_, actions) = c.on_server(server(Some(5), Some(5)));
        assert_eq!(actions, [Action::Start]);
        assert!(c.is_active());
        // The same state again changes nothing.
        assert_eq!(c.on_server(server(Some(5), Some(5))), (false, vec![]));
    }

    #[test]
    fn not_ready_never_answers_a_blessing() {
        let (mut c, _) = Component::new("gw", "gateway", "null");
        let (_, actions) = c.on_server(server(Some(5), None));
        assert!(actions.is_empty());
        // Ready later: answered then.
        assert_eq!(
            sent_tokens(&c.set_ready(true)),
            [(None, true), (Some(5), true)]
        );
    }

    #[test]
    fn revoked_blessing_stops_first_then_clears_the_token() {
        let mut c = ready_component();
        c.on_server(server(Some(5), None));
        c.on_server(server(Some(5), Some(5)));
        let (_, actions) = c.on_server(server(None, Some(5)));
        // Only Stop: the token is still ours until the work has stopped.
        assert_eq!(actions, [Action::Stop]);
        assert_eq!(c.blessing_res().token, Some(5));
        // Messages while stopping change nothing.
        let (_, actions) = c.on_server(server(Some(9), Some(5)));
        assert!(actions.is_empty());
        let actions = c.runner_stopped();
        // Cleared, then the newer request (9) answered at once.
        assert_eq!(sent_tokens(&actions), [(None, true), (Some(9), true)]);
        assert_eq!(c.state(), ComponentState::Confirming);
    }

    #[test]
    fn new_token_while_running_restarts_the_cycle() {
        let mut c = ready_component();
        c.on_server(server(Some(5), None));
        c.on_server(server(Some(5), Some(5)));
        let (_, actions) = c.on_server(server(Some(6), Some(5)));
        assert_eq!(actions, [Action::Stop]);
        let actions = c.runner_stopped();
        assert_eq!(sent_tokens(&actions), [(None, true), (Some(6), true)]);
        let (_, actions) = c.on_server(server(Some(6), Some(6)));
        assert_eq!(actions, [Action::Start]);
    }

    #[test]
    fn not_ready_while_running_stops() {
        let mut c = ready_component();
        c.on_server(server(Some(5), None));
        c.on_server(server(Some(5), Some(5)));
        let actions = c.set_ready(false);
        assert_eq!(sent_tokens(&actions), [(Some(5), false)]);
        assert_eq!(actions.last(), Some(&Action::Stop));
        assert_eq!(sent_tokens(&c.runner_stopped()), [(None, false)]);
        assert!(!c.is_active());
    }

    #[test]
    fn request_changed_before_the_echo_answers_the_newer_one() {
        let mut c = ready_component();
        c.on_server(server(Some(5), None));
        // The master moved on to 6 before our 5 came back.
        let (_, actions) = c.on_server(server(Some(6), Some(5)));
        assert_eq!(sent_tokens(&actions), [(Some(6), true)]);
        assert!(!actions.contains(&Action::Start));
        let (_, actions) = c.on_server(server(Some(6), Some(6)));
        assert_eq!(actions, [Action::Start]);
    }

    #[test]
    fn revoked_before_the_echo_never_starts() {
        let mut c = ready_component();
        c.on_server(server(Some(5), None));
        let (_, actions) = c.on_server(server(None, Some(5)));
        assert!(actions.is_empty());
        assert_eq!(c.state(), ComponentState::Waiting);
        assert!(!c.is_active());
    }

    #[test]
    fn own_entry_missing_is_not_blessed() {
        let mut c = ready_component();
        let mut msg = server(Some(5), None);
        msg.cid = CID + 1;
        let (changed, actions) = c.on_server(msg);
        assert!(changed);
        assert!(actions.is_empty());
        assert!(c.info().is_none());
    }
}
