//! Network fault injection: a forwarding TCP proxy that can take the
//! server away in two ways, and listeners that accept and never answer.
//!
//! Owns: std threads only (no runtime), so a stalled socket never blocks a
//! test's runtime. It may not read the protocol beyond the 8-byte TLS
//! request a `Silent` listener answers.
//!
//! * [`Proxy::blackhole`] closes every forwarded connection (the client
//!   sees end-of-stream at once, `is_closed()` becomes true) and closes new
//!   ones at accept.
//! * [`Proxy::half_open`] closes the server side of every forwarded
//!   connection but leaves the client side open and silent until the
//!   client writes, then closes it: a connection the server or a middlebox
//!   dropped without telling the client, which `is_closed()` cannot see
//!   and one round trip finds.
//! * [`Silent`] accepts TCP connections and never says a word, or answers
//!   the TLS request with `S` and then says nothing: a connect that hangs in
//!   the startup or in the TLS handshake.

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

struct Inner {
    upstream: SocketAddr,
    blackholed: AtomicBool,
    stopping: AtomicBool,
    live: Mutex<Vec<Pair>>,
}

/// A forwarding TCP proxy on `127.0.0.1:<port()>`.
pub struct Proxy {
    port: u16,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let inner = Arc::new(Inner {
            upstream,
            blackholed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
        });
        let accept_inner = inner.clone();
        let accept = thread::Builder::new()
            .name("pg-proxy-accept".into())
            .spawn(move || accept_loop(&listener, &accept_inner))?;
        Ok(Self {
            port,
            inner,
            accept: Some(accept),
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Severs every forwarded connection and closes new ones at accept.
    pub fn blackhole(&self) {
        self.inner.blackholed.store(true, Ordering::SeqCst);
        for pair in std::mem::take(&mut *self.inner.live.lock().unwrap()) {
            let _ = pair.client.shutdown(Shutdown::Both);
            let _ = pair.server.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections again after `blackhole`.
    pub fn resume(&self) {
        self.blackholed_flag().store(false, Ordering::SeqCst);
    }

    fn blackholed_flag(&self) -> &AtomicBool {
        &self.inner.blackholed
    }

    /// Closes the server side of every forwarded connection; each client
    /// side stays open, silently, until its client writes.
    pub fn half_open(&self) {
        for pair in std::mem::take(&mut *self.inner.live.lock().unwrap()) {
            pair.silent.store(true, Ordering::SeqCst);
            let _ = pair.server.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.blackhole();
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
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
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&inner.upstream, Duration::from_secs(2)) else {
            continue;
        };
        if let Err(error) = forward(client, server, inner) {
            eprintln!("pg proxy: could not forward a connection: {error}");
        }
    }
}

fn forward(client: TcpStream, server: TcpStream, inner: &Inner) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let silent = Arc::new(AtomicBool::new(false));
    inner.live.lock().unwrap().push(Pair {
        client: client.try_clone()?,
        server: server.try_clone()?,
        silent: silent.clone(),
    });
    let (client_in, server_out) = (client.try_clone()?, server.try_clone()?);
    thread::Builder::new()
        .name("pg-proxy-up".into())
        .spawn(move || {
            // Client to server: when the server side is gone, a write fails
            // and both sides close; a half-open client learns of it only
            // here, on its next write.
            let _ = io::copy(&mut &client_in, &mut &server_out);
            let _ = client_in.shutdown(Shutdown::Both);
            let _ = server_out.shutdown(Shutdown::Both);
        })?;
    thread::Builder::new()
        .name("pg-proxy-down".into())
        .spawn(move || {
            let _ = io::copy(&mut &server, &mut &client);
            let _ = server.shutdown(Shutdown::Both);
            if !silent.load(Ordering::SeqCst) {
                let _ = client.shutdown(Shutdown::Both);
            }
        })?;
    Ok(())
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
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let accept = thread::Builder::new()
            .name("pg-silent".into())
            .spawn(move || {
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
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
