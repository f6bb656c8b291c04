//! A host [`DeviceClient`] backed by any SDK [`ClientBackend`]: what a host-side test
//! uses to run a real plugin library through the real loader against the SDK test
//! kit's recording client (`gateway_plugin_api::sdk::testing::RecordingBackend`),
//! instead of writing a recording client of its own.

use std::sync::Arc;

use futures::future::BoxFuture;
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent};
use gateway_plugin_api::sdk::{ClientBackend, ClientError as SdkClientError};

use crate::device::{ClientError, DeviceClient};

/// The host's client trait over an SDK client backend.
pub struct SdkClient {
    backend: Arc<dyn ClientBackend>,
}

impl SdkClient {
    /// A client forwarding every call to `backend`.
    pub fn new(backend: Arc<dyn ClientBackend>) -> Self {
        Self { backend }
    }
}

/// The host has two failure kinds; any other SDK failure means the server is gone for
/// the caller.
fn host_error(err: SdkClientError) -> ClientError {
    match err {
        SdkClientError::RegisterFailed => ClientError::RegisterFailed,
        SdkClientError::ConnectionClosed | SdkClientError::Other(_) => {
            ClientError::ConnectionClosed
        }
    }
}

impl DeviceClient for SdkClient {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async move { self.backend.register(events).await.map_err(host_error) })
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async move {
            self.backend
                .register_with_response(events)
                .await
                .map_err(host_error)
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async move { self.backend.query(params).await.map_err(host_error) })
    }
}
