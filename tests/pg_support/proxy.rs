//! Network fault injection for the tests against a real PostgreSQL server:
//! a forwarding TCP proxy that can take "the database" away in two ways,
//! and listeners that accept and never answer. One copy serves both test
//! suites: the root's `tests/postgres.rs` (`mod pg_support`) and
//! slotpool-postgres's tests (`tests/support/mod.rs` includes this file by
//! path); each uses part of it.
//!
//! Owns: std threads only (no runtime), so a stalled socket never blocks a
//! test's runtime: one listener on `127.0.0.1:0` (an ephemeral port, kept
//! for the listener's whole life), and for the proxy two threads per
//! forwarded connection (one per direction). It may not read the protocol
//! beyond the 8-byte TLS request a `Silent` listener answers.
//!
//! * [`Proxy::blackhole`] behaves like a database host whose server is gone
//!   behind a stable address: every *existing* forwarded connection is
//!   closed at once (both sockets shut down, so clients see end-of-stream
//!   on their next read, `is_closed()` becomes true, and the server
//!   backends exit), and every *new* connection is accepted and closed
//!   immediately, so a client's connect fails fast with "connection
//!   closed" during the startup handshake. [`Proxy::resume`] forwards
//!   again.
//! * [`Proxy::half_open`] closes the server side of every forwarded
//!   connection but leaves the client side open and silent until the
//!   client writes, then closes it: a connection the server or a middlebox
//!   dropped without telling the client, which `is_closed()` cannot see
//!   and one round trip finds.
//! * [`Silent`] accepts TCP connections and never says a word, or answers
//!   the TLS request with `S` and then says nothing: a connect that hangs in
//!   the startup or in the TLS handshake. Only for a client that bounds the
//!   whole connect: `tokio-postgres` applies `connect_timeout` to the TCP
//!   connect alone, so under a client without its own bound (the root's
//!   tests) a stalled handshake would hang forever; those take the
//!   database away with `blackhole` instead.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One forwarded connection's sockets.
struct Pair {
    client: TcpStream,
    server: TcpStream,
    /// Set by `half_open`: the client side stays open after the server
    /// side ends.
    silent: Arc<AtomicBool>,
}

/// State shared by the proxy handle, its accept thread and its pipes.
struct Inner {
    upstream: SocketAddr,
    blackholed: AtomicBool,
    stopping: AtomicBool,
    /// Every forwarded connection, to sever on `blackhole` or `half_open`.
    live: Mutex<Vec<Pair>>,
}

/// A forwarding TCP proxy on `127.0.0.1:<port()>` that can be blackholed,
/// resumed and made half-open.
pub struct Proxy {
    port: u16,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding `127.0.0.1:<port()>` to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            upstream,
            blackholed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
        });
        let accept_inner = inner.clone();
        let (port, accept) = listen("pg-proxy-accept", move |listener| {
            accept_loop(&listener, &accept_inner);
        })?;
        Ok(Self {
            port,
            inner,
            accept: Some(accept),
        })
    }

    /// The local port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Takes the "database" down: severs every forwarded connection and
    /// closes new ones as soon as they are accepted.
    pub fn blackhole(&self) {
        self.inner.blackholed.store(true, Ordering::SeqCst);
        for pair in self.inner.take_live() {
            let _ = pair.client.shutdown(Shutdown::Both);
            let _ = pair.server.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections again after `blackhole`.
    pub fn resume(&self) {
        self.inner.blackholed.store(false, Ordering::SeqCst);
    }

    /// Closes the server side of every forwarded connection; each client
    /// side stays open, silently, until its client writes.
    pub fn half_open(&self) {
        for pair in self.inner.take_live() {
            pair.silent.store(true, Ordering::SeqCst);
            let _ = pair.server.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.blackhole();
        stop_accepting(self.port, self.accept.take());
    }
}

impl Inner {
    /// Every forwarded connection, no longer tracked.
    fn take_live(&self) -> Vec<Pair> {
        std::mem::take(&mut *self.live.lock().unwrap())
    }
}

fn accept_loop(listener: &TcpListener, inner: &Arc<Inner>) {
    for client in listener.incoming() {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if inner.blackholed.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue; // dropped: closed before the handshake
        }
        let Ok(server) = TcpStream::connect_timeout(&inner.upstream, Duration::from_secs(2)) else {
            continue; // upstream unreachable: the client sees its socket close
        };
        if let Err(error) = forward(client, server, inner) {
            eprintln!("pg proxy: could not forward a connection: {error}");
        }
    }
}

/// Registers the pair and starts one pipe thread per direction.
fn forward(client: TcpStream, server: TcpStream, inner: &Inner) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let silent = Arc::new(AtomicBool::new(false));
    {
        // Checked under the lock `blackhole` takes after setting the flag,
        // so a connection accepted while `blackhole()` runs is severed too.
        let mut live = inner.live.lock().unwrap();
        if inner.blackholed.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return Ok(());
        }
        live.push(Pair {
            client: client.try_clone()?,
            server: server.try_clone()?,
            silent: silent.clone(),
        });
    }
    let (client_in, server_out) = (client.try_clone()?, server.try_clone()?);
    // Client to server: when the server side is gone, a write fails and
    // both sides close; a half-open client learns of it only here, on its
    // next write.
    thread::Builder::new()
        .name("pg-proxy-up".into())
        .spawn(move || pipe(&client_in, &server_out, &AtomicBool::new(false)))?;
    thread::Builder::new()
        .name("pg-proxy-down".into())
        .spawn(move || pipe(&server, &client, &silent))?;
    Ok(())
}

/// Copies `from` to `to` until either side ends, then closes `from`, and
/// `to` unless `keep_open` is set (a half-open client side), so the other
/// direction's thread ends too.
fn pipe(from: &TcpStream, to: &TcpStream, keep_open: &AtomicBool) {
    let _ = io::copy(&mut &*from, &mut &*to);
    let _ = from.shutdown(Shutdown::Both);
    if !keep_open.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Both);
    }
}

/// How a [`Silent`] listener treats a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Never answers anything.
    Always,
    /// Answers the client's TLS request with `S` (yes), then never answers.
    AfterTlsYes,
}

/// A listener on `127.0.0.1:<port()>` that accepts and stalls.
pub struct Silent {
    port: u16,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Silent {
    /// Starts listening.
    pub fn start(mode: Silence) -> io::Result<Self> {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let (port, accept) = listen("pg-silent", move |listener| {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                if mode == Silence::AfterTlsYes {
                    // The SSLRequest is 8 bytes: length 8, code 80877103.
                    let mut request = [0u8; 8];
                    if stream.read_exact(&mut request).is_ok() {
                        let _ = stream.write_all(b"S");
                    }
                }
                held.push(stream);
            }
        })?;
        Ok(Self {
            port,
            stopping,
            accept: Some(accept),
        })
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        stop_accepting(self.port, self.accept.take());
    }
}

/// Binds an ephemeral port on `127.0.0.1` and runs `accept` on it on a
/// thread named `name`; the port and the thread.
fn listen(
    name: &str,
    accept: impl FnOnce(TcpListener) + Send + 'static,
) -> io::Result<(u16, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let thread = thread::Builder::new()
        .name(name.into())
        .spawn(move || accept(listener))?;
    Ok((port, thread))
}

/// Wakes the blocking accept on `port` so its thread sees its stop flag
/// (set by the caller) and exits, and waits for it.
fn stop_accepting(port: u16, accept: Option<JoinHandle<()>>) {
    let _ = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    );
    if let Some(accept) = accept {
        let _ = accept.join();
    }
}
