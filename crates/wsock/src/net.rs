//! The Rust face: async `TcpListener`, `TcpStream` and `UdpSocket` on a simulated [`Host`], in
//! the shape of `tokio::net`. Streams implement tokio's `AsyncRead`/`AsyncWrite`. The futures
//! need no particular runtime: they are woken by the host's driver, so any executor works.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wsock_stack::{Endpoint, Family, Host, Shutdown, SocketOptions};

use crate::error::Result;

fn family_of(addr: &SocketAddr) -> Family {
    Family::of(addr)
}

/// A TCP listening socket.
#[derive(Debug)]
pub struct TcpListener {
    ep: Endpoint,
}

impl TcpListener {
    /// Binds and listens on `addr` of `host` (backlog 16).
    ///
    /// # Errors
    /// `WSAEADDRINUSE`, `WSAEACCES` (exclusive holder), `WSAEADDRNOTAVAIL` as [`crate::Error`].
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// let server = net.host("server").unwrap();
    /// let listener = wsock::net::TcpListener::bind(&server, "0.0.0.0:80".parse().unwrap())?;
    /// assert_eq!(listener.local_addr()?.port(), 80);
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub fn bind(host: &Host, addr: SocketAddr) -> Result<TcpListener> {
        TcpListener::bind_with(host, addr, SocketOptions::default())
    }

    /// Binds and listens with socket options (buffer sizes, address sharing) set first; accepted
    /// streams inherit them, as on Windows.
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// let opts = wsock::SocketOptions { recv_buffer: 4 << 20, ..Default::default() };
    /// let l = wsock::net::TcpListener::bind_with(&net.host("server").unwrap(), "0.0.0.0:81".parse().unwrap(), opts)?;
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub fn bind_with(host: &Host, addr: SocketAddr, opts: SocketOptions) -> Result<TcpListener> {
        TcpListener::bind_with_backlog(host, addr, opts, DEFAULT_BACKLOG)
    }

    /// Binds and listens with socket options and an explicit backlog: how many connections
    /// (completed or half-open) may wait for [`TcpListener::accept`]; more are refused.
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// let l = wsock::net::TcpListener::bind_with_backlog(
    ///     &net.host("server").unwrap(), "0.0.0.0:82".parse().unwrap(), Default::default(), 4)?;
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub fn bind_with_backlog(
        host: &Host,
        addr: SocketAddr,
        opts: SocketOptions,
        backlog: usize,
    ) -> Result<TcpListener> {
        let ep = host.tcp(family_of(&addr));
        let r = ep
            .set_options(|o| *o = opts)
            .and_then(|_| ep.bind(addr))
            .and_then(|_| ep.listen(backlog));
        if let Err(e) = r {
            let _ = ep.close();
            return Err(e.into());
        }
        Ok(TcpListener { ep })
    }

    /// Waits for the next connection. Cancel safe.
    ///
    /// # Errors
    /// The stack's error if the listener is gone.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        let (ep, peer) = self.ep.accept().await?;
        Ok((TcpStream { ep }, peer))
    }

    /// The bound address.
    ///
    /// # Errors
    /// `WSAEINVAL` if unbound (cannot happen after [`TcpListener::bind`]).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.ep.local_addr()?)
    }
}

/// The backlog of [`TcpListener::bind`] (tokio's default).
pub const DEFAULT_BACKLOG: usize = 1024;

impl Drop for TcpListener {
    fn drop(&mut self) {
        let _ = self.ep.close();
    }
}

/// A connected TCP stream.
#[derive(Debug)]
pub struct TcpStream {
    ep: Endpoint,
}

impl TcpStream {
    /// Connects from `host` to `addr`.
    ///
    /// # Errors
    /// `WSAECONNREFUSED` when nothing listens, `WSAETIMEDOUT`, `WSAEACCES` when policy blocks.
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// # let rt = net.runtime()?;
    /// let client = net.host("client").unwrap();
    /// let err = rt.block_on(wsock::net::TcpStream::connect(&client, "10.0.0.2:9".parse().unwrap())).unwrap_err();
    /// assert_eq!(err.wsa_code(), 10061); // WSAECONNREFUSED
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub async fn connect(host: &Host, addr: SocketAddr) -> Result<TcpStream> {
        TcpStream::connect_with(host, addr, SocketOptions::default()).await
    }

    /// Connects with socket options (buffer sizes, `TCP_NODELAY`, ...) set before the handshake,
    /// so the window scale is negotiated for the buffer asked for.
    ///
    /// # Errors
    /// As [`TcpStream::connect`].
    pub async fn connect_with(
        host: &Host,
        addr: SocketAddr,
        opts: SocketOptions,
    ) -> Result<TcpStream> {
        let ep = host.tcp(family_of(&addr));
        if let Err(e) = ep.set_options(|o| *o = opts) {
            let _ = ep.close();
            return Err(e.into());
        }
        match ep.connect(addr).await {
            Ok(()) => Ok(TcpStream { ep }),
            Err(e) => {
                let _ = ep.close();
                Err(e.into())
            }
        }
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// `WSAENOTSOCK` after close.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        Ok(self.ep.set_options(|o| o.nodelay = nodelay)?)
    }

    /// The local address.
    ///
    /// # Errors
    /// `WSAEINVAL` when unknown.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.ep.local_addr()?)
    }

    /// The peer's address.
    ///
    /// # Errors
    /// `WSAENOTCONN`.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.ep.peer_addr()?)
    }

    /// The underlying stack endpoint (for views and tests).
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match self.ep.poll_recv(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(crate::Error::from(e).into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.ep
            .poll_send(cx, buf)
            .map_err(|e| crate::Error::from(e).into())
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.ep.shutdown(Shutdown::Send) {
            Ok(()) | Err(wsock_stack::StackError::Shutdown) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(crate::Error::from(e).into())),
        }
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let _ = self.ep.close();
    }
}

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    ep: Endpoint,
}

impl UdpSocket {
    /// Binds a UDP socket on `host`.
    ///
    /// # Errors
    /// `WSAEADDRINUSE`, `WSAEADDRNOTAVAIL`.
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// let sock = wsock::net::UdpSocket::bind(&net.host("client").unwrap(), "0.0.0.0:0".parse().unwrap())?;
    /// assert_ne!(sock.local_addr()?.port(), 0);
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub fn bind(host: &Host, addr: SocketAddr) -> Result<UdpSocket> {
        let ep = host.udp(family_of(&addr));
        if let Err(e) = ep.bind(addr) {
            let _ = ep.close();
            return Err(e.into());
        }
        Ok(UdpSocket { ep })
    }

    /// Sends one datagram to `to`.
    ///
    /// # Errors
    /// `WSAEMSGSIZE` when larger than the link MTU allows, `WSAEACCES` when policy blocks.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> Result<usize> {
        Ok(self.ep.send_to(buf, Some(to)).await?)
    }

    /// Receives one datagram; a datagram longer than `buf` is truncated (`WSAEMSGSIZE`).
    ///
    /// # Errors
    /// `WSAEMSGSIZE` when truncated.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        let (n, len, from) = self.ep.recv_from(buf).await?;
        if len > n {
            return Err(wsock_stack::StackError::MessageTooLong.into());
        }
        Ok((n, from))
    }

    /// Sets the default peer.
    ///
    /// # Errors
    /// `WSAEAFNOSUPPORT` for the other family.
    pub fn connect(&self, peer: SocketAddr) -> Result<()> {
        Ok(self.ep.udp_connect(Some(peer))?)
    }

    /// Sends to the default peer.
    ///
    /// # Errors
    /// `WSAENOTCONN` without one.
    pub async fn send(&self, buf: &[u8]) -> Result<usize> {
        Ok(self.ep.send_to(buf, None).await?)
    }

    /// Receives from the default peer.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`].
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    /// The bound address.
    ///
    /// # Errors
    /// `WSAEINVAL` when unbound.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.ep.local_addr()?)
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let _ = self.ep.close();
    }
}

// ------------------------------------------------------------------ task-scoped impersonation

pub use crate::identity::Impersonation;

/// Runs `fut` impersonating `imp`: the Rust face of `WSAImpersonateSocketPeer` +
/// `WSARevertImpersonation`. Inside, [`crate::ext::current_impersonation`] (and the raw
/// `OpenThreadToken`) see `imp`; [`revert`] ends it early. Scopes nest: an inner scope shadows
/// the outer one and the outer one is back when the inner future completes.
///
/// The impersonation belongs to this future, not to a thread: it lives in a tokio task-local
/// that is set only while this future is being polled, so other tasks polled by the same
/// worker thread never see it, and the future may move between threads between polls.
///
/// Cancel safety: dropping the returned future (a `select!` losing branch, a timeout, an
/// aborted task) ends the impersonation with it; there is nothing to revert and nothing that
/// can leak. The returned future is as cancel-safe as `fut` itself.
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// let server = net.host("server").unwrap();
/// let alice = wsock::identity::peer_impersonation(&server, "CLIENT", Some("alice"))?;
/// let name = net.runtime()?.block_on(wsock::net::impersonate(alice, async {
///     let me = wsock::ext::current_impersonation().unwrap();
///     wsock::identity::directory(&server).unwrap().lookup_sid(&me.token().user().sid).unwrap().name().to_string()
/// }));
/// assert_eq!(name, "alice");
/// assert!(wsock::ext::current_impersonation().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn impersonate<F: std::future::Future>(imp: Impersonation, fut: F) -> F::Output {
    crate::identity::scope(Some(imp), fut).await
}

/// Runs `fut` as itself inside an impersonating scope (a scope with no impersonation that
/// shadows the outer one), e.g. to open a file as the service, not as the peer.
pub async fn as_self<F: std::future::Future>(fut: F) -> F::Output {
    crate::identity::scope(None, fut).await
}

/// Ends the impersonation of the enclosing [`impersonate`] scope for the rest of that scope
/// (the task's `WSARevertImpersonation`). Outside any scope it does nothing; it never touches
/// the thread's impersonation. Returns whether the caller was in a scope.
pub fn revert() -> bool {
    crate::identity::revert_task()
}

/// The calling task's impersonation inside an [`impersonate`] scope; elsewhere the thread's.
pub fn current_impersonation() -> Option<Impersonation> {
    crate::identity::current_impersonation()
}
