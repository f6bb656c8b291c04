//! Query semantics of the embedded server's event store against the real hat-event
//! server 0.9.44 (LMDB backend, a timestamp and a source-timestamp partition): the
//! same events registered in both, the same queries asked over TCP, the same answers
//! (issue 14). Servers give their own ids and timestamps, so answers are compared by
//! the events' payloads, cursors and time bounds are each server's own.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer};
use gateway_model::{
    event_type_from_str as t, Event, EventId, Order, OrderBy, Payload, QueryLatestParams,
    QueryParams, QueryResult, QueryServerParams, QueryTimeseriesParams, RegisterEvent, Status,
    Timestamp,
};
use gateway_test_support::hat::HatEventServer;
use gateway_test_support::TempDir;

/// One server under comparison: a connection and its events by payload number.
struct Side {
    name: &'static str,
    client: Client,
    by_n: HashMap<i64, Event>,
}

async fn connect(addr: std::net::SocketAddr, name: &'static str) -> Side {
    let (client, mut rx) = Client::connect(addr, ClientConfig::new("test/compare"))
        .await
        .unwrap();
    while client.status() != Status::Operational {
        match rx.recv().await {
            Some(Notification::Status(_)) => {}
            other => panic!("{name}: unexpected before operational: {other:?}"),
        }
    }
    Side {
        name,
        client,
        by_n: HashMap::new(),
    }
}

fn st(s: i64) -> Option<Timestamp> {
    Some(Timestamp::new(1_700_000_000 + s, 0))
}

/// The registrations: (type, source timestamp, payload number), one request per line;
/// source timestamps out of registration order, repeated, or absent.
fn requests() -> Vec<Vec<(&'static str, Option<Timestamp>, i64)>> {
    vec![
        vec![("test/a/x", st(50), 0), ("test/b/x", st(10), 1)],
        vec![("test/a/y", None, 2)],
        vec![
            ("test/c", st(30), 3),
            ("test/a/x", st(30), 4),
            ("test/b/y", None, 5),
        ],
        vec![("test/b/x", st(70), 6)],
        vec![("test/a/x", st(20), 7)],
        vec![("test/c", None, 8), ("test/a/y", st(40), 9)],
        vec![("test/b/y", st(10), 10)],
        vec![("test/a/x", st(60), 11), ("test/c", st(60), 12)],
        vec![("test/b/x", None, 13)],
        vec![
            ("test/a/y", st(5), 14),
            ("test/b/x", st(80), 15),
            ("test/c", st(45), 16),
        ],
    ]
}

fn number(event: &Event) -> String {
    match &event.payload {
        Some(Payload::Json(_)) if event.event_type.first().is_some_and(|s| s == "test") => event
            .payload
            .as_ref()
            .and_then(|p| p.json_value())
            .map(|v| v.to_string())
            .unwrap_or_default(),
        // hat's own events and ours (CONNECTED): by type.
        _ => event.event_type.join("/"),
    }
}

fn answer(result: &QueryResult) -> (Vec<String>, bool) {
    (
        result.events.iter().map(number).collect(),
        result.more_follows,
    )
}

/// A timeseries query with cursors and time bounds named by payload numbers.
#[derive(Clone, Default)]
struct Ts {
    types: Option<Vec<&'static str>>,
    order: Order,
    order_by: OrderBy,
    max: Option<i64>,
    after: Option<i64>,
    /// `t_from` / `t_to`: the timestamps of these events.
    t: (Option<i64>, Option<i64>),
    source: (Option<Timestamp>, Option<Timestamp>),
}

impl Side {
    fn id(&self, n: i64) -> EventId {
        self.by_n[&n].id
    }

    fn params(&self, q: &Ts) -> QueryParams {
        let time = |n: Option<i64>| n.map(|n| self.by_n[&n].timestamp);
        QueryParams::Timeseries(QueryTimeseriesParams {
            event_types: q
                .types
                .as_ref()
                .map(|types| types.iter().map(|s| t(s)).collect()),
            t_from: time(q.t.0),
            t_to: time(q.t.1),
            source_t_from: q.source.0,
            source_t_to: q.source.1,
            order: q.order,
            order_by: q.order_by,
            max_results: q.max,
            last_event_id: q.after.map(|n| self.id(n)),
        })
    }

    async fn query(&self, params: QueryParams) -> QueryResult {
        self.client.query(params).await.unwrap()
    }

    /// Every page of `q` with `max` results, each page's cursor its last event.
    async fn pages(&self, q: &Ts) -> Vec<(Vec<String>, bool)> {
        let mut pages = Vec::new();
        let mut params = self.params(q);
        loop {
            let result = self.query(params.clone()).await;
            pages.push(answer(&result));
            let (QueryParams::Timeseries(p), Some(last)) = (&mut params, result.events.last())
            else {
                break;
            };
            if !result.more_follows {
                break;
            }
            p.last_event_id = Some(last.id);
        }
        pages
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_timeseries_and_server_queries_answer_as_hat_event_lmdb_does() {
    let hat = HatEventServer::start_with_source_partition().await;
    let dir = TempDir::new("store-hat");
    let ours = EmbeddedServer::open(EmbeddedConfig {
        db_path: Some(dir.path().join("events.redb")),
        ..EmbeddedConfig::default()
    })
    .unwrap();
    let listener = ours.listen("127.0.0.1:0", None).await.unwrap();
    let mut sides = [
        connect(hat.addr, "hat-event").await,
        connect(listener.local_addr().unwrap(), "embedded").await,
    ];
    for request in requests() {
        for side in &mut sides {
            let events = request
                .iter()
                .map(|(ty, source, n)| RegisterEvent {
                    source_timestamp: *source,
                    ..RegisterEvent::json(t(ty), serde_json::json!(n))
                })
                .collect();
            let stored = side
                .client
                .register_with_response(events)
                .await
                .unwrap()
                .unwrap();
            for (event, (_, _, n)) in stored.into_iter().zip(&request) {
                side.by_n.insert(*n, event);
            }
        }
    }
    let [hat_side, our_side] = &sides;

    // latest: in the order each type was first registered.
    for types in [
        vec!["test/*"],
        vec!["test/a/*"],
        vec!["test/?/x"],
        vec!["test/?/y", "test/c"],
        vec!["test/a/*", "test/?/x"],
    ] {
        let params = QueryParams::Latest(QueryLatestParams {
            event_types: Some(types.iter().map(|s| t(s)).collect()),
        });
        let (h, o) = (
            answer(&hat_side.query(params.clone()).await),
            answer(&our_side.query(params).await),
        );
        assert_eq!(h, o, "latest {types:?}");
    }
    // Exact types only: hat answers in the order of a Python set of the query types
    // (arbitrary): the same events.
    let params = QueryParams::Latest(QueryLatestParams {
        event_types: Some(vec![t("test/c"), t("test/a/x")]),
    });
    let (mut h, mut o) = (
        answer(&hat_side.query(params.clone()).await).0,
        answer(&our_side.query(params).await).0,
    );
    h.sort();
    o.sort();
    assert_eq!(h, o, "latest of exact types");

    // timeseries: both orders, both order-by fields, filters, cursors, paging.
    let mut queries = Vec::new();
    for order in [Order::Ascending, Order::Descending] {
        for order_by in [OrderBy::Timestamp, OrderBy::SourceTimestamp] {
            let base = Ts {
                types: Some(vec!["test/*"]),
                order,
                order_by,
                ..Ts::default()
            };
            queries.extend([
                base.clone(),
                Ts {
                    types: Some(vec!["test/a/*", "test/c"]),
                    ..base.clone()
                },
                Ts {
                    max: Some(3),
                    ..base.clone()
                },
                Ts {
                    max: Some(0),
                    ..base.clone()
                },
                // A cursor that is not of the queried types: skipped up to it anyway.
                Ts {
                    types: Some(vec!["test/a/*"]),
                    after: Some(6),
                    ..base.clone()
                },
                // A cursor without a source timestamp.
                Ts {
                    after: Some(8),
                    ..base.clone()
                },
                Ts {
                    source: (st(20), st(60)),
                    ..base.clone()
                },
                Ts {
                    source: (st(30), None),
                    after: Some(4),
                    ..base.clone()
                },
                Ts {
                    t: (Some(3), Some(12)),
                    ..base.clone()
                },
                // A cursor outside the time range.
                Ts {
                    t: (Some(3), Some(12)),
                    after: Some(1),
                    ..base.clone()
                },
                Ts {
                    types: Some(vec!["test/?/x"]),
                    t: (Some(6), None),
                    source: (None, st(70)),
                    ..base.clone()
                },
            ]);
        }
    }
    for (index, q) in queries.iter().enumerate() {
        let (h, o) = (
            answer(&hat_side.query(hat_side.params(q)).await),
            answer(&our_side.query(our_side.params(q)).await),
        );
        assert_eq!(h, o, "timeseries query {index}");
        let paged = Ts {
            max: Some(2),
            ..q.clone()
        };
        assert_eq!(
            hat_side.pages(&paged).await,
            our_side.pages(&paged).await,
            "timeseries query {index}, pages of 2"
        );
    }

    // server: every event after a cursor, in id order, paged.
    for (after, max) in [(0, None), (0, Some(4)), (7, Some(3)), (16, None)] {
        let mut pages = Vec::new();
        for side in &sides {
            let mut side_pages = Vec::new();
            let mut cursor = side.id(after);
            loop {
                let result = side
                    .query(QueryParams::Server(QueryServerParams {
                        server_id: 1,
                        persisted: false,
                        max_results: max,
                        last_event_id: Some(cursor),
                    }))
                    .await;
                side_pages.push(answer(&result));
                match result.events.last() {
                    Some(last) if result.more_follows => cursor = last.id,
                    _ => break,
                }
            }
            pages.push((side.name, side_pages));
        }
        assert_eq!(
            pages[0].1, pages[1].1,
            "server query after {after}, max {max:?}"
        );
    }
}
