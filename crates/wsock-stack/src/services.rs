//! The scenario's built-in services (`[[host.service]]`): TCP and UDP echo, started on every
//! local host of any [`crate::Network`] (unless [`crate::NetworkBuilder::services`] turns them
//! off), written against the stack's own endpoint API like any application.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::error::{Result, StackError};
use crate::scenario::ServiceKind;
use crate::shared::HostShared;
use crate::socket::Endpoint;
use crate::types::{Family, Protocol};

/// Starts every service of `host` on the current runtime.
pub(crate) fn start(host: &Arc<HostShared>) -> Result<()> {
    for svc in host.spec.services.clone() {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), svc.port);
        let name = host.spec.name.clone();
        match svc.kind {
            ServiceKind::TcpEcho => {
                let listener = endpoint(host, Protocol::Tcp);
                listener
                    .bind(any)
                    .map_err(|e| service_error(&name, svc.port, e))?;
                listener
                    .listen(crate::core::SOMAXCONN_BACKLOG)
                    .map_err(|e| service_error(&name, svc.port, e))?;
                tokio::spawn(async move {
                    loop {
                        let Ok((conn, peer)) = listener.accept().await else {
                            return;
                        };
                        tracing::info!(target: "wsock::service", host = %name, %peer, "tcp-echo: connection");
                        tokio::spawn(echo_stream(conn));
                    }
                });
            }
            ServiceKind::UdpEcho => {
                let sock = endpoint(host, Protocol::Udp);
                sock.bind(any)
                    .map_err(|e| service_error(&name, svc.port, e))?;
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        match sock.recv_from(&mut buf).await {
                            Ok((n, _, from)) => {
                                let _ = sock.send_to(&buf[..n], Some(from)).await;
                            }
                            // Oversized datagrams and ICMP errors do not stop the service.
                            Err(StackError::MessageTooLong | StackError::ConnectionReset) => {}
                            Err(_) => return,
                        }
                    }
                });
            }
        }
    }
    Ok(())
}

fn endpoint(host: &Arc<HostShared>, protocol: Protocol) -> Endpoint {
    let ctx = crate::policy::endpoint_context(&host.spec, protocol == Protocol::Tcp, false);
    let id = host.lock().create(protocol, Family::V4, ctx);
    Endpoint::new(host.clone(), id, protocol, Family::V4)
}

fn service_error(host: &str, port: u16, e: StackError) -> StackError {
    StackError::Scenario(format!(
        "host {host:?}: service on port {port} cannot start: {e}"
    ))
}

async fn echo_stream(conn: Endpoint) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.recv(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut off = 0;
                while off < n {
                    match conn.send(&buf[off..n]).await {
                        Ok(k) => off += k,
                        Err(_) => return,
                    }
                }
            }
        }
    }
    let _ = conn.shutdown(crate::types::Shutdown::Send);
}
