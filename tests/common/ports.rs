//! Free loopback ports for servers a test starts itself (a proxy, an upstream app).

use std::net::TcpListener;

/// A loopback port nothing listens on right now. Another process may take it before the
/// caller binds it; the window is short and a failed bind fails the test with its log.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a probe port")
        .local_addr()
        .unwrap()
        .port()
}
