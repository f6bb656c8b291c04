//! The one event-server call the IEC devices make besides `register`: hat's start-up
//! query of the latest events (enable events of the masters, current values of the
//! slaves), over the one client contract, [`gateway_model::EventClient`].

use gateway_model::{ClientError, Event, EventClient, EventType, QueryLatestParams, QueryParams};

/// The latest event of every type matching one of `event_types`.
pub async fn query_latest(
    client: &dyn EventClient,
    event_types: Vec<EventType>,
) -> Result<Vec<Event>, ClientError> {
    let params = QueryParams::Latest(QueryLatestParams {
        event_types: Some(event_types),
    });
    Ok(client.query(params).await?.events)
}
