//! `gateway-host events`: the operator's Eventer client. Registers, queries and watches
//! events on any Eventer server (a real hat-event server or the host's embedded one)
//! and prints one JSON object per event per line.

use std::io::Write;

use base64::Engine as _;
use clap::{Args, Subcommand};
use gateway_eventer::client::{Client, ClientConfig, ClientError, Notification};
use gateway_model::{
    event_type_from_str, event_type_to_string, Event, EventType, Payload, QueryLatestParams,
    QueryParams, QueryTimeseriesParams, RegisterEvent, Subscription, Timestamp,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Default Eventer client name of this tool.
pub const DEFAULT_CLIENT_NAME: &str = "gateway-host/events";

/// `events` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct EventsArgs {
    /// Eventer server address, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: String,
    /// Client name sent when connecting.
    #[arg(long, default_value = DEFAULT_CLIENT_NAME)]
    pub client_name: String,
    /// Client token, when the server requires one.
    #[arg(long)]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// `events` subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum EventsCommand {
    /// Register one event and print it as the server stored it.
    Register {
        /// Event type, slash-separated (gateway/gw1/sim/s1/system/enable).
        #[arg(value_name = "TYPE", value_parser = parse_register_type)]
        event_type: EventType,
        /// JSON payload (any JSON value: true, 12, '{"value": 1}').
        #[arg(long, value_name = "VALUE", value_parser = parse_json_value)]
        json: Option<Value>,
        /// Set the source timestamp to now.
        #[arg(long)]
        source_timestamp: bool,
    },
    /// Query stored events.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Subscribe and print every notified event as it arrives, until interrupted.
    Watch {
        /// Query types, slash-separated; `?` matches one segment, a final `*` any rest.
        #[arg(value_name = "PATTERN", required = true, value_parser = parse_pattern)]
        patterns: Vec<EventType>,
    },
}

/// `events query` subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum QueryCommand {
    /// The latest event of every matching type.
    Latest {
        /// Query types, slash-separated.
        #[arg(value_name = "PATTERN", required = true, value_parser = parse_pattern)]
        patterns: Vec<EventType>,
    },
    /// Matching events, newest first.
    Timeseries {
        /// Query types, slash-separated.
        #[arg(value_name = "PATTERN", required = true, value_parser = parse_pattern)]
        patterns: Vec<EventType>,
        /// At most this many events.
        #[arg(long, value_name = "N")]
        max: Option<i64>,
    },
}

/// Why an `events` command failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Connecting or a request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server answered the registration with `failure`.
    #[error("the server refused the registration")]
    RegisterRefused,
    /// The connection ended while watching.
    #[error("the server closed the connection")]
    Closed,
    /// Standard output failed (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl EventsError {
    /// True when the reader of standard output went away (`| head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

fn parse_json_value(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|err| format!("not valid JSON: {err}"))
}

fn parse_pattern(text: &str) -> Result<EventType, String> {
    let event_type = event_type_from_str(text);
    Subscription::new(vec![event_type.clone()])
        .map_err(|_| "'*' is only allowed as the last segment".to_owned())?;
    Ok(event_type)
}

fn parse_register_type(text: &str) -> Result<EventType, String> {
    let event_type = event_type_from_str(text);
    if event_type.is_empty() {
        return Err("the event type is empty".to_owned());
    }
    if event_type.iter().any(|s| s == "?" || s == "*") {
        return Err("an event to register cannot have '?' or '*' segments".to_owned());
    }
    Ok(event_type)
}

/// One event as the JSON object the `events` commands print.
///
/// A struct rather than a `serde_json::Value` so the keys come out in this order
/// (`id`, `type`, `timestamp`, `source_timestamp`, `payload`), which reads better.
#[derive(Debug, serde::Serialize)]
pub struct EventLine<'a> {
    /// `{"server", "session", "instance"}`.
    pub id: EventIdLine,
    /// The event type's segments.
    #[serde(rename = "type")]
    pub event_type: &'a [String],
    /// Server timestamp, float seconds.
    pub timestamp: f64,
    /// Source timestamp, float seconds, or `null`.
    pub source_timestamp: Option<f64>,
    /// `{"json": value}`, `{"binary": {"type", "data" (base64)}}` or `null`.
    pub payload: Option<Value>,
}

/// An event id as printed.
#[derive(Debug, serde::Serialize)]
pub struct EventIdLine {
    /// Server id.
    pub server: i64,
    /// Session.
    pub session: i64,
    /// Instance.
    pub instance: i64,
}

impl<'a> EventLine<'a> {
    /// The printed form of `event`.
    pub fn new(event: &'a Event) -> Self {
        Self {
            id: EventIdLine {
                server: event.id.server,
                session: event.id.session,
                instance: event.id.instance,
            },
            event_type: &event.event_type,
            timestamp: event.timestamp.to_f64(),
            source_timestamp: event.source_timestamp.map(Timestamp::to_f64),
            payload: event.payload.as_ref().map(payload_to_json),
        }
    }
}

/// One event as a JSON value (see [`EventLine`]).
pub fn event_to_json(event: &Event) -> Value {
    serde_json::to_value(EventLine::new(event)).unwrap_or(Value::Null)
}

/// One event as one line of JSON text (no newline).
pub fn format_event(event: &Event) -> String {
    // Serializing plain numbers, strings and a Value cannot fail.
    serde_json::to_string(&EventLine::new(event)).unwrap_or_default()
}

fn payload_to_json(payload: &Payload) -> Value {
    match payload {
        Payload::Json(text) => json!({ "json": text.value() }),
        Payload::Binary { type_name, data } => json!({
            "binary": {
                "type": type_name,
                "data": base64::engine::general_purpose::STANDARD.encode(data),
            }
        }),
    }
}

/// Writes events one JSON object per line and flushes (watchers read line by line).
pub fn write_events<W: Write>(out: &mut W, events: &[Event]) -> std::io::Result<()> {
    for event in events {
        writeln!(out, "{}", format_event(event))?;
    }
    out.flush()
}

/// Runs an `events` command, printing to `out`; `watch` ends when `shutdown` fires.
pub async fn run<W: Write>(
    args: EventsArgs,
    shutdown: CancellationToken,
    out: &mut W,
) -> Result<(), EventsError> {
    let mut config = ClientConfig::new(args.client_name);
    config.client_token = args.token;
    if let EventsCommand::Watch { patterns } = &args.command {
        config.subscriptions.clone_from(patterns);
    }
    let (client, mut notifications) = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        connected = Client::connect(args.server.as_str(), config) => connected?,
    };
    let mut announced = false;
    let result = match args.command {
        EventsCommand::Register {
            event_type,
            json,
            source_timestamp,
        } => {
            let event = RegisterEvent {
                event_type,
                source_timestamp: source_timestamp.then(Timestamp::now),
                payload: json.map(Payload::json),
            };
            match client.register_with_response(vec![event]).await? {
                Some(events) => write_events(out, &events).map_err(EventsError::from),
                None => Err(EventsError::RegisterRefused),
            }
        }
        EventsCommand::Query(query) => {
            let params = match query {
                QueryCommand::Latest { patterns } => QueryParams::Latest(QueryLatestParams {
                    event_types: Some(patterns),
                }),
                QueryCommand::Timeseries { patterns, max } => {
                    QueryParams::Timeseries(QueryTimeseriesParams {
                        event_types: Some(patterns),
                        max_results: max,
                        ..QueryTimeseriesParams::default()
                    })
                }
            };
            let result = client.query(params).await?;
            if result.more_follows {
                tracing::info!("more events follow; raise --max to see them");
            }
            write_events(out, &result.events).map_err(EventsError::from)
        }
        EventsCommand::Watch { patterns } => loop {
            if !announced {
                announced = true;
                let patterns: Vec<String> =
                    patterns.iter().map(|p| event_type_to_string(p)).collect();
                // On stderr, so stdout stays one event per line; scripts and tests wait
                // for it to know the subscription is in place.
                eprintln!(
                    "watching {} on {} (server status {})",
                    patterns.join(" "),
                    args.server,
                    client.status().as_str()
                );
            }
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                notification = notifications.recv() => match notification {
                    Some(Notification::Events(events)) => write_events(out, &events)?,
                    Some(Notification::Status(status)) => {
                        tracing::info!(status = status.as_str(), "server status");
                    }
                    None => break Err(EventsError::Closed),
                },
            }
        },
    };
    client.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use gateway_model::{EventId, JsonText};

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        events: EventsArgs,
    }

    fn parse(args: &[&str]) -> Result<EventsArgs, clap::Error> {
        let mut argv = vec!["events"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv).map(|cli| cli.events)
    }

    fn segments(text: &str) -> EventType {
        event_type_from_str(text)
    }

    #[test]
    fn register_arguments() {
        let args = parse(&[
            "--server",
            "127.0.0.1:23012",
            "register",
            "gateway/gw1/sim/s1/system/enable",
            "--json",
            "true",
            "--source-timestamp",
        ])
        .unwrap();
        assert_eq!(args.server, "127.0.0.1:23012");
        assert_eq!(args.client_name, DEFAULT_CLIENT_NAME);
        assert_eq!(
            args.command,
            EventsCommand::Register {
                event_type: segments("gateway/gw1/sim/s1/system/enable"),
                json: Some(json!(true)),
                source_timestamp: true
            }
        );
        let args = parse(&["--server", "h:1", "register", "a/b"]).unwrap();
        assert_eq!(
            args.command,
            EventsCommand::Register {
                event_type: segments("a/b"),
                json: None,
                source_timestamp: false
            }
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &["--server", "h:1", "register", "a/b", "--json", "{nope"][..],
            &["--server", "h:1", "register", "a/*"],
            &["--server", "h:1", "register", ""],
            &["--server", "h:1", "watch"],
            &["--server", "h:1", "watch", "a/*/b"],
            &["--server", "h:1", "query", "latest"],
            &["register", "a"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn query_and_watch_arguments() {
        let args = parse(&["--server", "h:1", "query", "latest", "gateway/*", "a/?/b"]).unwrap();
        assert_eq!(
            args.command,
            EventsCommand::Query(QueryCommand::Latest {
                patterns: vec![segments("gateway/*"), segments("a/?/b")]
            })
        );
        let args = parse(&[
            "--server",
            "h:1",
            "--token",
            "t",
            "query",
            "timeseries",
            "x/*",
            "--max",
            "5",
        ])
        .unwrap();
        assert_eq!(args.token.as_deref(), Some("t"));
        assert_eq!(
            args.command,
            EventsCommand::Query(QueryCommand::Timeseries {
                patterns: vec![segments("x/*")],
                max: Some(5)
            })
        );
        let args = parse(&["--server", "h:1", "watch", "gateway/*"]).unwrap();
        assert_eq!(
            args.command,
            EventsCommand::Watch {
                patterns: vec![segments("gateway/*")]
            }
        );
    }

    fn event(payload: Option<Payload>, source_timestamp: Option<Timestamp>) -> Event {
        Event {
            id: EventId {
                server: 1,
                session: 2,
                instance: 3,
            },
            event_type: segments("gateway/gw1/sim/s1/gateway/running"),
            timestamp: Timestamp::new(1_700_000_000, 250_000),
            source_timestamp,
            payload,
        }
    }

    #[test]
    fn json_event_output() {
        let ev = event(
            Some(Payload::Json(
                JsonText::new(r#"{"value": [1, 2]}"#).unwrap(),
            )),
            Some(Timestamp::new(-2, 500_000)),
        );
        assert_eq!(
            event_to_json(&ev),
            json!({
                "id": {"server": 1, "session": 2, "instance": 3},
                "type": ["gateway", "gw1", "sim", "s1", "gateway", "running"],
                "timestamp": 1_700_000_000.25,
                "source_timestamp": -1.5,
                "payload": {"json": {"value": [1, 2]}}
            })
        );
    }

    #[test]
    fn binary_and_empty_payload_output() {
        let ev = event(
            Some(Payload::Binary {
                type_name: "raw".into(),
                data: vec![0, 1, 2, 255],
            }),
            None,
        );
        let value = event_to_json(&ev);
        assert_eq!(
            value["payload"],
            json!({"binary": {"type": "raw", "data": "AAEC/w=="}})
        );
        assert_eq!(value["source_timestamp"], Value::Null);
        assert_eq!(event_to_json(&event(None, None))["payload"], Value::Null);
    }

    #[test]
    fn keys_in_reading_order() {
        let line = format_event(&event(None, None));
        assert!(
            line.starts_with(r#"{"id":{"server":1,"session":2,"instance":3},"type":["gateway","#),
            "{line}"
        );
        assert!(
            line.ends_with(r#""timestamp":1700000000.25,"source_timestamp":null,"payload":null}"#),
            "{line}"
        );
    }

    #[test]
    fn one_line_per_event() {
        let mut out = Vec::new();
        write_events(&mut out, &[event(None, None), event(None, None)]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for line in lines {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["id"]["instance"], 3);
        }
    }
}
