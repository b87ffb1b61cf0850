//! Shared fixtures for Mandate's integration tests: processes that are killed when
//! the test ends, free loopback ports, a frame-aware TCP proxy that can alter
//! or replay what passes through it, and a real local EVM node ([`Anvil`]). Not published.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod anvil;
pub mod contracts;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod postgres;
pub mod rpc_hold;
pub use anvil::Anvil;
pub use postgres::Postgres;
pub use rpc_hold::RpcHold;

/// A free TCP port on 127.0.0.1 for a server a test starts (bound once, then released).
///
/// Ports come from below Linux's ephemeral range (32768–60999): a port the kernel
/// picked for us could be handed out again, before our server binds it, as the
/// source port of any outgoing connection (an RPC call, a login), which made the
/// server fail with "Address already in use". Each test process counts through its
/// own block, chosen by its pid, so threads and concurrent test binaries do not meet.
pub fn free_port() -> u16 {
    const FIRST: u32 = 10_000;
    const BLOCK: u32 = 2_000;
    const BLOCKS: u32 = 11; // 10 000 ..= 31 999
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = FIRST + (std::process::id() % BLOCKS) * BLOCK;
    for _ in 0..BLOCK {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % BLOCK;
        let port = u16::try_from(base + offset).expect("below 32 000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{base}..{}", base + BLOCK)
}

/// A child process that is killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// The first line the server printed on stdout (its JSON banner).
    pub banner: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGKILL, as a crash would: no clean-up runs. Waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to 20 s) for the process to exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "process {pid} ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `bin args` with `envs` and waits (up to 60 s) for its first stdout line.
pub fn spawn_server(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    spawn_server_logging(bin, args, envs, None)
}

/// Like [`spawn_server`], with the process's stderr appended to `log` when given
/// (inherited otherwise).
pub fn spawn_server_logging(bin: &Path, args: &[&str], envs: &[(&str, &str)], log: Option<&Path>) -> Server {
    let stderr = match log {
        Some(path) => {
            Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the stderr log"))
        }
        None => Stdio::inherit(),
    };
    let mut command = Command::new(bin);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).expect("server printed no banner");
    let banner = serde_json::from_str(&line).expect("banner is JSON");
    Server { child, banner }
}

/// Runs `bin --json args` with only `envs` set; returns (exit success, parsed stdout).
pub fn run_json(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> (bool, Value) {
    let mut command = Command::new(bin);
    command.arg("--json").args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().expect("run command");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("not JSON: {stdout:?} stderr: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), value)
}

/// What the proxy does to the server → client direction.
#[derive(Debug, Clone, Copy)]
pub enum Mischief {
    /// Flip one bit in the last byte of the n-th length-prefixed frame.
    Tamper(usize),
    /// Send the n-th frame twice.
    Replay(usize),
}

/// A TCP proxy on loopback that forwards to `target`, misbehaving once per connection.
pub struct Proxy {
    /// The proxy's address.
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    let mut frame = len.to_vec();
    frame.extend_from_slice(&body);
    Some(frame)
}

impl Proxy {
    /// Starts a proxy to `target` applying `mischief` to every connection.
    pub fn start(target: String, mischief: Mischief) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let (mut c_read, mut s_write) =
                    (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let mut index = 0;
                    while let Some(mut frame) = read_frame(&mut s_read) {
                        match mischief {
                            Mischief::Tamper(n) if n == index => {
                                if let Some(last) = frame.last_mut() {
                                    *last ^= 0x01;
                                }
                            }
                            Mischief::Replay(n) if n == index => {
                                let _ = c_write.write_all(&frame);
                            }
                            _ => {}
                        }
                        if c_write.write_all(&frame).is_err() {
                            break;
                        }
                        index += 1;
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { addr, stop }
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
