//! Built-in services a host runs (`[[host.service]]` in the scenario): TCP and UDP echo, written
//! against the Rust face of the API like any application.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsock::net::{TcpListener, UdpSocket};
use wsock::Host;
use wsock_stack::scenario::ServiceKind;

/// Starts every service of `host` on the network's runtime.
///
/// # Errors
/// The bind error of a service's socket.
pub fn start(host: &Host) -> wsock::Result<()> {
    let rt = host.network().runtime()?;
    for svc in host.spec().services.clone() {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), svc.port);
        match svc.kind {
            ServiceKind::TcpEcho => {
                let listener = TcpListener::bind(host, any)?;
                let name = host.name().to_string();
                rt.spawn(async move {
                    loop {
                        let Ok((mut stream, peer)) = listener.accept().await else { return };
                        tracing::info!(target: "wsock::service", host = %name, %peer, "tcp-echo: connection");
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                match stream.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if stream.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            let _ = stream.shutdown().await;
                        });
                    }
                });
            }
            ServiceKind::UdpEcho => {
                let sock = UdpSocket::bind(host, any)?;
                rt.spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        match sock.recv_from(&mut buf).await {
                            Ok((n, from)) => {
                                let _ = sock.send_to(&buf[..n], from).await;
                            }
                            Err(wsock::Error::Socket(wsock::StackError::MessageTooLong)) => {
                                continue
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        }
    }
    Ok(())
}
