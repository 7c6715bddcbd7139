//! A TCP proxy for taking "the database" down and up again under a pool.
//!
//! Owns: one listener on `127.0.0.1:0` (an ephemeral port, kept for the
//! proxy's whole life) forwarding each accepted connection to an upstream
//! address with two std threads (one per direction).
//!
//! # What `blackhole()` means here
//!
//! While blackholed the proxy behaves like a database host whose server is
//! gone behind a stable address: every *existing* forwarded connection is
//! closed at once (both sockets shut down, so clients see end-of-stream on
//! their next read and the server backends exit), and every *new* connection
//! is accepted and closed immediately, so a client's connect fails fast with
//! "connection closed" during the startup handshake.
//!
//! Stalling sockets instead (accepting and never answering) was considered
//! and rejected for these tests: `tokio-postgres` applies `connect_timeout`
//! only to the TCP connect, not to the startup handshake, so a stalled
//! handshake would hang the pool's connect forever, and a stalled query would
//! hang its caller; neither is bounded. `resume()` forwards again.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// State shared by the proxy handle, its accept thread and its pipes.
struct Inner {
    upstream: SocketAddr,
    blackholed: AtomicBool,
    stopping: AtomicBool,
    /// Both sockets of every forwarded connection, to sever on `blackhole`.
    live: Mutex<Vec<(TcpStream, TcpStream)>>,
}

/// A forwarding TCP proxy that can be blackholed and resumed.
pub struct Proxy {
    port: u16,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding `127.0.0.1:<port()>` to `upstream`.
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

    /// The local port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Takes the "database" down: severs every forwarded connection and
    /// closes new ones as soon as they are accepted.
    pub fn blackhole(&self) {
        self.inner.blackholed.store(true, Ordering::SeqCst);
        self.inner.sever_all();
    }

    /// Forwards new connections again.
    pub fn resume(&self) {
        self.inner.blackholed.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.sever_all();
        // Wake the blocking accept so the thread sees `stopping` and exits.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Inner {
    fn sever_all(&self) {
        let live = std::mem::take(&mut *self.live.lock().unwrap());
        for (client, server) in live {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
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
    {
        // Checked under the lock `sever_all` takes after setting the flag,
        // so a connection accepted while `blackhole()` runs is severed too.
        let mut live = inner.live.lock().unwrap();
        if inner.blackholed.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return Ok(());
        }
        live.push((client.try_clone()?, server.try_clone()?));
    }
    let (client_in, server_out) = (client.try_clone()?, server.try_clone()?);
    thread::Builder::new()
        .name("pg-proxy-up".into())
        .spawn(move || pipe(client_in, server_out))?;
    thread::Builder::new()
        .name("pg-proxy-down".into())
        .spawn(move || pipe(server, client))?;
    Ok(())
}

/// Copies `from` to `to` until either side ends, then closes both, so the
/// other direction's thread ends too.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
