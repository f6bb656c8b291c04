//! systemd's notify protocol (`Type=notify`, through the `sd-notify` crate): `READY=1`
//! once the event server is connected and every device has started (none starting or
//! being created), `STATUS=` lines as the connection and the devices change,
//! `WATCHDOG=1` at half of `WATCHDOG_USEC` when the service manager set it, and
//! `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` nothing is sent.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::metrics::{self, Readiness};

/// Sends `states`; a failure is logged once per kind of message, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, "systemd notify failed");
    }
}

/// The `STATUS=` text for a readiness.
pub(crate) fn status_text(readiness: &Readiness) -> String {
    if readiness.standby {
        return "standby until blessed by the monitor".to_owned();
    }
    if !readiness.connected {
        return "waiting for the event server".to_owned();
    }
    let mut text = format!(
        "connected; {} of {} device(s) running",
        readiness.running, readiness.devices
    );
    if !readiness.not_running.is_empty() {
        text.push_str(&format!(
            "; enabled, not running: {}",
            readiness.not_running.join(", ")
        ));
    }
    text
}

/// Notifies the service manager until `shutdown`, then sends `STOPPING=1`. Returns
/// at once (sending nothing) when `NOTIFY_SOCKET` is not set.
pub async fn run(shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let metrics = metrics::global();
    // Half the watchdog interval, as sd_watchdog_enabled(3) advises.
    let watchdog = sd_notify::watchdog_enabled().map(|usec| usec / 2);
    let mut ping = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready_sent = false;
    let mut last_status = String::new();
    loop {
        let changed = metrics.changed();
        tokio::pin!(changed);
        // Registered before the state is read: no change is missed.
        changed.as_mut().enable();
        let readiness = metrics.readiness();
        let text = status_text(&readiness);
        if !ready_sent && readiness.started {
            ready_sent = true;
            tracing::info!(status = %text, "systemd: ready");
            send(&[NotifyState::Ready, NotifyState::Status(&text)]);
            last_status = text;
        } else if text != last_status {
            send(&[NotifyState::Status(&text)]);
            last_status = text;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = changed => {}
            _ = ping.tick(), if watchdog.is_some() => send(&[NotifyState::Watchdog]),
        }
    }
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: closing devices"),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_what_is_missing() {
        let mut readiness = Readiness {
            ready: false,
            started: false,
            connected: false,
            standby: false,
            devices: 2,
            running: 1,
            enabled: 2,
            not_running: vec!["sim/b (failed)".to_owned()],
        };
        assert_eq!(status_text(&readiness), "waiting for the event server");
        readiness.connected = true;
        assert_eq!(
            status_text(&readiness),
            "connected; 1 of 2 device(s) running; enabled, not running: sim/b (failed)"
        );
        readiness.standby = true;
        assert_eq!(
            status_text(&readiness),
            "standby until blessed by the monitor"
        );
    }
}
