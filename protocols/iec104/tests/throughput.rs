//! Throughput of the shell, one way over loopback: our `connect` sending to our
//! `Listener`, every ASDU checked for order. Prints ASDUs/s; `IEC104_THROUGHPUT_COUNT`
//! sets the number (default 100,000). Measure with
//! `cargo test --release -p gateway-iec104 --test throughput -- --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{counter, counter_of, WAIT};
use iec104::{connect, ConnectionConfig, Listener};

async fn one_way(config: ConnectionConfig, count: u32) -> f64 {
    let listener = Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config.clone())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let receiving = tokio::spawn(async move {
        let mut connection = listener.accept().await.unwrap();
        for n in 0..count {
            let asdu = connection.receive().await.unwrap();
            assert_eq!(counter_of(&asdu), n);
        }
        connection
    });
    let connection = connect(addr, &config).await.unwrap();
    let sender = connection.sender();
    let start = Instant::now();
    for n in 0..count {
        sender.send(counter(n), false).await.unwrap();
    }
    // Timed until the last ASDU is received: waiting for its acknowledgement would add t2
    // whenever count is no multiple of w.
    sender.drain(false).await.unwrap();
    let _receiver = tokio::time::timeout(WAIT * 3, receiving)
        .await
        .unwrap()
        .unwrap();
    let rate = f64::from(count) / start.elapsed().as_secs_f64();
    assert!(!sender.is_closed());
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asdus_per_second_one_way() {
    let count = std::env::var("IEC104_THROUGHPUT_COUNT")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    // hat's defaults, and a wide window.
    let windows: [(u16, u16); 2] = [(12, 8), (128, 64)];
    for (k, w) in windows {
        let config = ConnectionConfig {
            send_window_size: k,
            receive_window_size: w,
            ..ConnectionConfig::default()
        };
        let rate = one_way(config, count).await;
        println!("iec104 one way, k={k} w={w}: {count} ASDUs, {rate:.0} ASDUs/s");
    }
}
