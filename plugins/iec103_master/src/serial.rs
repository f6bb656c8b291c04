//! The real link: `iec_link::MasterLink` (unbalanced primary, link address size ONE as
//! hat's 103 master uses) on the configured serial port.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::{secs, MasterConfig, RemoteDeviceConfig};
use crate::link::{Conn, Link, LinkError, LinkOpener};

/// Opens `iec_link::MasterLink`s.
#[derive(Debug, Clone, Copy, Default)]
pub struct SerialOpener;

fn err(e: iec_link::LinkError) -> LinkError {
    LinkError(e.to_string())
}

/// The link layer's serial parameters of a configuration.
pub fn serial_params(config: &MasterConfig) -> iec_link::SerialParams {
    config.serial.params()
}

/// The link layer's connection options of a remote device.
pub fn connection_options(
    remote: &RemoteDeviceConfig,
    config: &MasterConfig,
) -> iec_link::MasterConnectionOptions {
    iec_link::MasterConnectionOptions {
        name: Some(config.name.clone()),
        response_timeout: secs(remote.response_timeout),
        send_retry_count: remote.send_retry_count,
        poll_class1_delay: remote.poll_class1_delay.map(secs),
        poll_class2_delay: remote.poll_class2_delay.map(secs),
        send_queue_size: config.send_queue_size(),
        receive_queue_size: config.receive_queue_size(),
    }
}

impl LinkOpener for SerialOpener {
    fn open(&self, config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let params = serial_params(config);
        Box::pin(async move {
            let link = iec_link::MasterLink::open(&params, iec_link::AddressSize::One)
                .await
                .map_err(err)?;
            Ok(Arc::new(SerialLink(link)) as Arc<dyn Link>)
        })
    }
}

struct SerialLink(iec_link::MasterLink);

impl Link for SerialLink {
    fn open_connection(
        &self,
        remote: &RemoteDeviceConfig,
        config: &MasterConfig,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let link = self.0.clone();
        let address = remote.address;
        let options = connection_options(remote, config);
        Box::pin(async move {
            let conn = link.open_connection(address, options).await.map_err(err)?;
            Ok(Arc::new(SerialConn(conn)) as Arc<dyn Conn>)
        })
    }

    fn closed(&self) -> BoxFuture<'static, ()> {
        let link = self.0.clone();
        Box::pin(async move {
            let reason = link.closed().await;
            tracing::info!(%reason, "link closed");
        })
    }

    fn close(&self) {
        self.0.close();
    }
}

struct SerialConn(iec_link::Connection);

impl Conn for SerialConn {
    fn send(&self, asdu: Vec<u8>) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move { self.0.send(Bytes::from(asdu), true).await.map_err(err) })
    }

    fn receive(&self) -> BoxFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move { self.0.receive().await.map(|b| b.to_vec()) })
    }

    fn close(&self) {
        self.0.close();
    }
}
