//! Slow and oversized clients (issue 4 §5): slowloris connections neither block normal
//! requests nor live forever; a slow body is cut off with 408.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Opens a connection that sends a request head one byte at a time, every `every`, until
/// `until`; returns how long the server kept it open (None if it was still open at `until`).
async fn slowloris(port: u16, every: Duration, until: Instant) -> Option<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(b"GET /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        if s.write_all(b"X").await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(every, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // a 408 response: the close follows
            Err(_) => {}    // nothing yet: keep dripping
        }
    }
    None
}

#[tokio::test]
async fn two_hundred_slowloris_connections_do_not_block_a_normal_request() {
    let app = TestApp::spawn(&["--client-timeout", "4s"]);
    let deadline = Instant::now() + Duration::from_secs(9);
    let drips: Vec<_> = (0..200)
        .map(|_| tokio::spawn(slowloris(app.port, Duration::from_secs(2), deadline)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A normal request completes promptly while all 200 are held open (bound: 10 s).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client
        .get(app.url("/sign-in"))
        .send()
        .await
        .expect("served despite slowloris");
    assert_eq!(r.status(), 200);
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // And the server cut the dripping connections off at its client timeout.
    let mut cut = 0;
    for d in drips {
        if let Some(open_for) = d.await.unwrap() {
            assert!(open_for < Duration::from_secs(9));
            cut += 1;
        }
    }
    assert!(
        cut >= 190,
        "only {cut} of 200 slow connections were closed by the server"
    );
}

#[tokio::test]
async fn a_body_that_drips_in_is_cut_off_with_408() {
    let app = TestApp::spawn(&["--client-timeout", "2s"]);
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    s.write_all(
        b"POST /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nu",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(8) {
        let _ = s.write_all(b"x").await;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(700), s.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
            if response.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(6));
}
