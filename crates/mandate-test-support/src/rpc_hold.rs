//! A JSON-RPC proxy in front of a node that forwards every call except
//! `eth_sendRawTransaction`, which it holds unanswered and unforwarded: a daemon
//! behind it has signed and recorded a transaction and now waits on its broadcast,
//! the moment a fault-injection test kills it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The proxy; stops accepting when dropped.
pub struct RpcHold {
    /// `http://127.0.0.1:PORT`, to give a daemon as its `--rpc-url`.
    pub url: String,
    held: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: String,
}

impl Drop for RpcHold {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One HTTP/1.1 message with a `Content-Length` body: (head, body); `None` at EOF.
fn read_message(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

impl RpcHold {
    /// A proxy to the node at `target` (`http://127.0.0.1:PORT`).
    pub fn start(target: &str) -> RpcHold {
        let target = target.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the RPC proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let (held, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let parked: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (count, stopped) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (target, count, parked) = (target.clone(), count.clone(), parked.clone());
                std::thread::spawn(move || serve(client, &target, &count, &parked));
            }
        });
        RpcHold { url: format!("http://{addr}"), held, stop, addr }
    }

    /// How many `eth_sendRawTransaction` calls are held.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

fn serve(client: TcpStream, target: &str, held: &AtomicUsize, parked: &Mutex<Vec<TcpStream>>) {
    let Ok(mut writer) = client.try_clone() else { return };
    let mut reader = BufReader::new(client);
    while let Some((head, body)) = read_message(&mut reader) {
        if String::from_utf8_lossy(&body).contains("eth_sendRawTransaction") {
            // Never answered: the connection stays open until the caller dies.
            held.fetch_add(1, Ordering::SeqCst);
            parked.lock().expect("parked").push(writer);
            return;
        }
        let Ok(upstream) = TcpStream::connect(target) else { return };
        let Ok(mut upstream_writer) = upstream.try_clone() else { return };
        if upstream_writer.write_all(head.as_bytes()).and_then(|()| upstream_writer.write_all(&body)).is_err() {
            return;
        }
        let Some((answer_head, answer_body)) = read_message(&mut BufReader::new(upstream)) else { return };
        if writer.write_all(answer_head.as_bytes()).and_then(|()| writer.write_all(&answer_body)).is_err() {
            return;
        }
    }
}
