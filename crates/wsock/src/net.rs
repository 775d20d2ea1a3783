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
use crate::identity::PeerTokens;
use crate::secure::{SecurityInfo, SecuritySettings};

fn family_of(addr: &SocketAddr) -> Family {
    Family::of(addr)
}

/// A TCP listening socket.
#[derive(Debug)]
pub struct TcpListener {
    ep: Endpoint,
    host: Host,
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
        TcpListener::listen_on(host, addr, opts, backlog, None)
    }

    /// Binds and listens with security set first (`WSASetSocketSecurity` before bind, as a
    /// Windows server does); accepted connections carry it. `SO_EXCLUSIVEADDRUSE` is set.
    ///
    /// # Errors
    /// As [`TcpListener::bind`]; [`crate::secure::SecureError`] for settings the raw face would
    /// refuse (`WSAEINVAL`, `WSAEMSGSIZE`) or that the stack refuses.
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// use wsock::secure::SecuritySettings;
    /// let server = net.host("server").unwrap();
    /// let settings = SecuritySettings::new().require_encryption();
    /// let l = wsock::net::TcpListener::bind_secure(&server, "0.0.0.0:27015".parse().unwrap(), &settings)?;
    /// assert_eq!(l.local_addr()?.port(), 27015);
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub fn bind_secure(
        host: &Host,
        addr: SocketAddr,
        settings: &SecuritySettings,
    ) -> Result<TcpListener> {
        TcpListener::listen_on(
            host,
            addr,
            SocketOptions::default(),
            DEFAULT_BACKLOG,
            Some(settings),
        )
    }

    fn listen_on(
        host: &Host,
        addr: SocketAddr,
        opts: SocketOptions,
        backlog: usize,
        settings: Option<&SecuritySettings>,
    ) -> Result<TcpListener> {
        let ep = host.tcp(family_of(&addr));
        let r = ep
            .set_options(|o| *o = opts)
            .map_err(crate::Error::from)
            .and_then(|_| match settings {
                Some(s) => crate::secure::apply(&ep, s).map_err(crate::Error::from),
                None => Ok(()),
            })
            .and_then(|_| ep.bind(addr).map_err(crate::Error::from))
            .and_then(|_| ep.listen(backlog).map_err(crate::Error::from));
        if let Err(e) = r {
            let _ = ep.close();
            return Err(e);
        }
        Ok(TcpListener {
            ep,
            host: host.clone(),
        })
    }

    /// Waits for the next connection. Cancel safe.
    ///
    /// # Errors
    /// The stack's error if the listener is gone.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        let (ep, peer) = self.ep.accept().await?;
        Ok((
            TcpStream {
                ep,
                host: self.host.clone(),
            },
            peer,
        ))
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
    host: Host,
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
        TcpStream::connect_inner(host, addr, opts, None).await
    }

    /// Connects with security: the classic Windows client flow (`WSASetSocketSecurity`, then
    /// `WSASetSocketPeerTargetName` when `target_name` is given, e.g. `host/server.example`,
    /// then connect). With the settings' `ALLOW_INSECURE` absent, no byte leaves in clear text;
    /// a failed negotiation fails the connect.
    ///
    /// # Errors
    /// As [`TcpStream::connect`]; [`crate::secure::SecureError`] for settings the raw face
    /// would refuse; `WSAETIMEDOUT` when negotiation fails.
    ///
    /// # Examples
    /// ```
    /// # let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
    /// use wsock::secure::SecuritySettings;
    /// # let _l = wsock::net::TcpListener::bind_secure(&net.host("server").unwrap(),
    /// #     "0.0.0.0:27015".parse().unwrap(), &SecuritySettings::new().require_encryption())?;
    /// let client = net.host("client").unwrap();
    /// let settings = SecuritySettings::new().require_encryption();
    /// let stream = net.runtime()?.block_on(wsock::net::TcpStream::connect_secure(
    ///     &client, "10.0.0.2:27015".parse().unwrap(), &settings, Some("host/SERVER")))?;
    /// assert!(stream.security_info()?.encrypted);
    /// # Ok::<(), wsock::Error>(())
    /// ```
    pub async fn connect_secure(
        host: &Host,
        addr: SocketAddr,
        settings: &SecuritySettings,
        target_name: Option<&str>,
    ) -> Result<TcpStream> {
        TcpStream::connect_inner(
            host,
            addr,
            SocketOptions::default(),
            Some((settings, target_name)),
        )
        .await
    }

    async fn connect_inner(
        host: &Host,
        addr: SocketAddr,
        opts: SocketOptions,
        secure: Option<(&SecuritySettings, Option<&str>)>,
    ) -> Result<TcpStream> {
        let ep = host.tcp(family_of(&addr));
        let r = ep
            .set_options(|o| *o = opts)
            .map_err(crate::Error::from)
            .and_then(|_| match secure {
                Some((s, name)) => {
                    crate::secure::apply(&ep, s)?;
                    if let Some(name) = name {
                        crate::secure::set_target_name(&ep, addr.ip(), name)?;
                    }
                    Ok(())
                }
                None => Ok(()),
            });
        if let Err(e) = r {
            let _ = ep.close();
            return Err(e);
        }
        match ep.connect(addr).await {
            Ok(()) => Ok(TcpStream {
                ep,
                host: host.clone(),
            }),
            Err(e) => {
                let _ = ep.close();
                Err(e.into())
            }
        }
    }

    /// How the connection is secured (`WSAQuerySocketSecurity`).
    ///
    /// # Errors
    /// The stack's error (e.g. the connection is gone).
    pub fn security_info(&self) -> Result<SecurityInfo> {
        Ok(crate::secure::query(&self.ep, None)?)
    }

    /// [`TcpStream::security_info`], and from now on the connection is aborted when an SA id
    /// that `fields` selects changes (`SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE`
    /// with that `FieldMask`): reads and writes then fail with `WSAECONNABORTED` and the peer
    /// gets a reset. `fields.qm` includes every quick mode rekey; `fields.mm` a main mode rekey
    /// or a new main mode. A connection that is not secured watches nothing.
    ///
    /// # Errors
    /// As [`TcpStream::security_info`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: &wsock::net::TcpStream) -> wsock::Result<()> {
    /// let fields = wsock::secure::SaFields { mm: true, qm: false };
    /// let info = stream.security_info_watching(fields)?;
    /// assert!(info.secured);
    /// # Ok(()) }
    /// ```
    pub fn security_info_watching(&self, fields: crate::secure::SaFields) -> Result<SecurityInfo> {
        Ok(crate::secure::query_watching(&self.ep, fields)?)
    }

    /// Handles to the authenticated peer's tokens (`WSAQuerySocketSecurity` with
    /// `PeerTokenAccessMask` = `access`): zero handles when `access` is 0 or the connection is
    /// not secured. Close each with `CloseHandle`.
    ///
    /// # Errors
    /// As [`TcpStream::security_info`]; an unknown peer principal.
    pub fn peer_tokens(&self, access: u32) -> Result<PeerTokens> {
        Ok(crate::secure::tokens(
            &self.host,
            &self.security_info()?,
            access,
        )?)
    }

    /// The impersonation of the authenticated peer (its user, else its computer). Use it with
    /// [`impersonate`] in a task, or with [`crate::ext::impersonate_scoped`] for a guard that
    /// impersonates on the calling thread until it drops.
    ///
    /// # Errors
    /// `WSAEINVAL` ([`crate::secure::SecureError::NoPeerIdentity`]) when the connection is not
    /// secured.
    pub fn peer_impersonation(&self) -> Result<crate::identity::Impersonation> {
        Ok(crate::secure::impersonation(
            &self.host,
            &self.security_info()?,
        )?)
    }

    /// Runs `fut` impersonating the authenticated peer, task-scoped (the async
    /// `WSAImpersonateSocketPeer` ... `WSARevertImpersonation`): the impersonation ends when
    /// `fut` completes or is dropped. Cancel safe as `fut` is.
    ///
    /// # Errors
    /// As [`TcpStream::peer_impersonation`].
    pub async fn impersonate_peer<F: std::future::Future>(&self, fut: F) -> Result<F::Output> {
        let imp = self.peer_impersonation()?;
        Ok(impersonate(imp, fut).await)
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
    host: Host,
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
        UdpSocket::bind_inner(host, addr, None)
    }

    /// Binds a UDP socket with security set first (right after the socket is made, as Windows
    /// asks of connectionless sockets). Name each peer with
    /// [`UdpSocket::set_peer_target_name`] before the first datagram to it.
    ///
    /// # Errors
    /// As [`UdpSocket::bind`]; [`crate::secure::SecureError`] as for
    /// [`TcpListener::bind_secure`].
    pub fn bind_secure(
        host: &Host,
        addr: SocketAddr,
        settings: &SecuritySettings,
    ) -> Result<UdpSocket> {
        UdpSocket::bind_inner(host, addr, Some(settings))
    }

    fn bind_inner(
        host: &Host,
        addr: SocketAddr,
        settings: Option<&SecuritySettings>,
    ) -> Result<UdpSocket> {
        let ep = host.udp(family_of(&addr));
        let r = match settings {
            Some(s) => crate::secure::apply(&ep, s).map_err(crate::Error::from),
            None => Ok(()),
        }
        .and_then(|_| ep.bind(addr).map_err(crate::Error::from));
        if let Err(e) = r {
            let _ = ep.close();
            return Err(e);
        }
        Ok(UdpSocket {
            ep,
            host: host.clone(),
        })
    }

    /// Names the principal the peer at `peer` must authenticate as
    /// (`WSASetSocketPeerTargetName`; one name per peer address).
    ///
    /// # Errors
    /// `WSAEINVAL` for an empty name or a zero address; `WSAEISCONN` after
    /// [`UdpSocket::connect`]; the stack's error.
    pub fn set_peer_target_name(&self, peer: SocketAddr, name: &str) -> Result<()> {
        if self.ep.peer_addr().is_ok() {
            return Err(crate::secure::SecureError::IsConnected.into());
        }
        if peer.ip().is_unspecified() && peer.port() == 0 {
            return Err(crate::secure::SecureError::InvalidValue(
                "a connectionless socket needs the peer's address",
            )
            .into());
        }
        Ok(crate::secure::set_target_name(&self.ep, peer.ip(), name)?)
    }

    /// Forgets the peer target name of `peer` (`WSADeleteSocketPeerTargetName`).
    ///
    /// # Errors
    /// The stack's error.
    pub fn delete_peer_target_name(&self, peer: SocketAddr) -> Result<()> {
        Ok(
            crate::stack_security::delete_peer_target_name(&self.ep, peer.ip())
                .map_err(crate::secure::SecureError::from)?,
        )
    }

    /// How traffic with `peer` is secured (`WSAQuerySocketSecurity` with the peer in the
    /// template).
    ///
    /// # Errors
    /// `WSAEINVAL` for a zero address or port; the stack's error.
    pub fn security_info(&self, peer: SocketAddr) -> Result<SecurityInfo> {
        if peer.ip().is_unspecified() || peer.port() == 0 {
            return Err(crate::secure::SecureError::InvalidValue(
                "a connectionless socket's query needs the peer's address and port",
            )
            .into());
        }
        Ok(crate::secure::query(&self.ep, Some(peer))?)
    }

    /// Handles to the tokens of the peer at `peer` (see [`TcpStream::peer_tokens`]).
    ///
    /// # Errors
    /// As [`UdpSocket::security_info`].
    pub fn peer_tokens(&self, peer: SocketAddr, access: u32) -> Result<PeerTokens> {
        Ok(crate::secure::tokens(
            &self.host,
            &self.security_info(peer)?,
            access,
        )?)
    }

    /// The impersonation of the authenticated peer at `peer` (see
    /// [`TcpStream::peer_impersonation`]).
    ///
    /// # Errors
    /// As [`UdpSocket::security_info`]; `WSAEINVAL` when traffic with `peer` is not secured.
    pub fn peer_impersonation(&self, peer: SocketAddr) -> Result<crate::identity::Impersonation> {
        Ok(crate::secure::impersonation(
            &self.host,
            &self.security_info(peer)?,
        )?)
    }

    /// Runs `fut` impersonating the authenticated peer at `peer`, task-scoped.
    ///
    /// # Errors
    /// As [`TcpStream::peer_impersonation`].
    pub async fn impersonate_peer<F: std::future::Future>(
        &self,
        peer: SocketAddr,
        fut: F,
    ) -> Result<F::Output> {
        let imp = self.peer_impersonation(peer)?;
        Ok(impersonate(imp, fut).await)
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
