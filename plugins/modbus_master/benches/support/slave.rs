//! Minimal Modbus TCP slave for the benchmarks, run as a child process (the benchmark
//! binary re-executed with [`SLAVE_ENV`] set) so that the master's CPU is measured
//! without the slave's. Answers FC03 for any unit with registers `address + generation`;
//! in `changing` mode the generation goes up on every request, so every read changes
//! every value.
//!
//! It prints its port on the first stdout line, then answers every `count` line on
//! stdin with the number of registers served so far (over all connections).

// Shared by several bench binaries; each uses a different part.
#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Environment variable that turns the benchmark binary into the slave; its value is
/// `static` or `changing`.
pub(crate) const SLAVE_ENV: &str = "MODBUS_BENCH_SLAVE";

/// A running slave child process, killed on drop.
pub(crate) struct Slave {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl Slave {
    /// Re-executes the current binary as a slave (`changing` or static values).
    pub(crate) fn spawn(changing: bool) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SLAVE_ENV, if changing { "changing" } else { "static" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port: u16 = lines.next().unwrap().unwrap().parse().unwrap();
        let stdin = child.stdin.take().unwrap();
        Self {
            child,
            stdin,
            lines,
            port,
        }
    }

    /// Registers served so far.
    pub(crate) fn served(&mut self) -> u64 {
        writeln!(self.stdin, "count").unwrap();
        self.stdin.flush().unwrap();
        self.lines.next().unwrap().unwrap().parse().unwrap()
    }

    /// The slave's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Slave {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slave's main: runs until stdin closes.
pub(crate) fn run_slave(changing: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    break;
                }
                println!("{}", counter.load(Ordering::Relaxed));
            }
            std::process::exit(0);
        });
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            let served = served.clone();
            tokio::spawn(async move {
                let mut generation: u16 = 0;
                let mut request = [0u8; 12];
                let mut response = Vec::with_capacity(260);
                while socket.read_exact(&mut request).await.is_ok() {
                    let address = u16::from_be_bytes([request[8], request[9]]);
                    let quantity = u16::from_be_bytes([request[10], request[11]]).min(125);
                    if changing {
                        generation = generation.wrapping_add(1);
                    }
                    response.clear();
                    response.extend_from_slice(&request[0..4]);
                    response.extend_from_slice(&(3 + 2 * quantity).to_be_bytes());
                    response.extend_from_slice(&[request[6], 3, (2 * quantity) as u8]);
                    for i in 0..quantity {
                        let a = address.wrapping_add(i);
                        response.extend_from_slice(&a.wrapping_add(generation).to_be_bytes());
                    }
                    if socket.write_all(&response).await.is_err() {
                        return;
                    }
                    served.fetch_add(u64::from(quantity), Ordering::Relaxed);
                }
            });
        }
    });
}
