//! `gethostname` and `getnameinfo`, as Microsoft's "gethostname function" and "getnameinfo
//! function" pages use them: the local host name, then the name and service of an address
//! (here the server's, 10.0.0.2 port 80, and the numeric form with `NI_NUMERICHOST |
//! NI_NUMERICSERV`).
//!
//! [`run`] is the Windows code; only the import changed. `main` starts the simulated network.
//!
//! ```sh
//! cargo run -p wsock --example hostname
//! ```

use std::mem::{size_of, zeroed};

use wsock::sys::*;

/// What [`run`] found.
#[derive(Debug)]
pub struct Names {
    /// `gethostname`.
    pub host: String,
    /// `getnameinfo` of the address: (node, service).
    pub name: (String, String),
    /// `getnameinfo` with `NI_NUMERICHOST | NI_NUMERICSERV`.
    pub numeric: (String, String),
}

fn text(buf: &[u8]) -> String {
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Looks up this host's name and the name of `ip:port`.
///
/// # Errors
/// The failing call and its code.
pub fn run(ip: [u8; 4], port: u16) -> Result<Names, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        if WSAStartup(0x0202, &mut wsa) != 0 {
            return Err("WSAStartup failed".into());
        }
        let r = (|| {
            let mut host = [0u8; 256];
            if gethostname(host.as_mut_ptr(), host.len() as i32) != 0 {
                return Err(format!(
                    "gethostname failed with error: {}",
                    WSAGetLastError()
                ));
            }
            let mut sa: SOCKADDR_IN = zeroed();
            sa.sin_family = AF_INET;
            sa.sin_port = htons(port);
            sa.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
            let lookup = |flags: i32| -> Result<(String, String), String> {
                let mut node = [0u8; NI_MAXHOST as usize];
                let mut serv = [0u8; NI_MAXSERV as usize];
                let rc = getnameinfo(
                    &sa as *const SOCKADDR_IN as *const SOCKADDR,
                    size_of::<SOCKADDR_IN>() as socklen_t,
                    node.as_mut_ptr(),
                    node.len() as u32,
                    serv.as_mut_ptr(),
                    serv.len() as u32,
                    flags,
                );
                if rc != 0 {
                    return Err(format!(
                        "getnameinfo failed with error: {}",
                        WSAGetLastError()
                    ));
                }
                Ok((text(&node), text(&serv)))
            };
            Ok(Names {
                host: text(&host),
                name: lookup(0)?,
                numeric: lookup((NI_NUMERICHOST | NI_NUMERICSERV) as i32)?,
            })
        })();
        WSACleanup();
        r
    }
}

fn main() -> std::process::ExitCode {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).expect("network");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    match run([10, 0, 0, 2], 80) {
        Ok(n) => {
            println!("gethostname: {}", n.host);
            println!("getnameinfo(10.0.0.2:80): {} {}", n.name.0, n.name.1);
            println!("numeric: {} {}", n.numeric.0, n.numeric.1);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
