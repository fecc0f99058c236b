//! SIGTERM (as systemd stops the service): in-flight requests finish with their normal answer,
//! then the process exits 0 promptly and the port closes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

/// Well under the 25 s shutdown timeout, so passing means the drain ended by itself.
const PROMPT: Duration = Duration::from_secs(20);

/// After exit nothing listens on the port any more.
fn assert_port_closed(port: u16) {
    let e = TcpStream::connect(("127.0.0.1", port)).expect_err("the port still accepts");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

/// POSTs a JSON sign-up on a raw connection with the body dripped in over ~1.5 s. Tells
/// `started` once the head and the first bytes are out, then returns the status line.
fn dripped_sign_up(port: u16, started: mpsc::Sender<()>) -> String {
    let body = br#"{"username": "drip", "password": "slowly-but-surely"}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /api/users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let chunks: Vec<&[u8]> = body.chunks(body.len().div_ceil(6)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        if i == 0 {
            started.send(()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut status = String::new();
    BufReader::new(s).read_line(&mut status).unwrap();
    status.trim().to_owned()
}

#[test]
fn sigterm_lets_a_slow_upload_finish_then_exits_0() {
    let mut app = TestApp::spawn(&[]);
    let port = app.port;
    let (tx, rx) = mpsc::channel();
    let request = std::thread::spawn(move || dripped_sign_up(port, tx));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("request started");
    std::thread::sleep(Duration::from_millis(200));

    let asked = Instant::now();
    let status = app.terminate();
    let took = asked.elapsed();
    let answer = request.join().unwrap();

    assert_eq!(answer, "HTTP/1.1 201 Created", "log:\n{}", app.log());
    assert!(status.success(), "{status:?}; log:\n{}", app.log());
    assert!(took < PROMPT, "took {took:?}");
    // It waited for the body (~1.3 s more) rather than cutting it off.
    assert!(took > Duration::from_millis(800), "took {took:?}");
    assert!(app.log().contains("SIGTERM"), "{}", app.log());
    assert_port_closed(port);
    let n: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM users WHERE username = 'drip'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "the drained sign-up was committed");
}

#[test]
fn sigterm_lets_queued_sign_ins_finish_their_argon2_work() {
    // Costly hashing on one KDF thread: the sign-ins queue for well over a second.
    let mut app = TestApp::spawn(&[
        "--argon2-m",
        "65536",
        "--argon2-t",
        "4",
        "--kdf-threads",
        "1",
        "--ip-kdf-rate",
        "0",
        // Each queued attempt holds a reserved failure until its hash is checked.
        "--lock-attempts",
        "10",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = app.client();
    rt.block_on(sign_up(&app, &c, "kate", "argon2-is-slow"));

    const N: usize = 4;
    let sign_ins: Vec<_> = (0..N)
        .map(|_| {
            let client = app.client();
            let page = app.url("/sign-in");
            rt.spawn(async move {
                let html = client.get(&page).send().await?.text().await?;
                let token = hidden_value(&html, "csrf_token").unwrap_or_default();
                let form = [
                    ("username", "kate"),
                    ("password", "argon2-is-slow"),
                    ("csrf_token", &token),
                ];
                let r = client.post(&page).form(&form).send().await?;
                Ok::<_, reqwest::Error>(r.status().as_u16())
            })
        })
        .collect();
    // Every form has reached its handler (logged before the KDF job is queued).
    let deadline = Instant::now() + Duration::from_secs(30);
    let received = |log: String| {
        log.lines()
            .filter(|l| l.contains("form received") && l.contains("/sign-in"))
            .count()
    };
    while received(app.log()) < N {
        assert!(
            Instant::now() < deadline,
            "sign-ins not received:\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sign_ins.iter().any(|h| !h.is_finished()),
        "all done before SIGTERM: the hashing is too cheap for this test"
    );

    let asked = Instant::now();
    let status = app.terminate();
    let took = asked.elapsed();
    let answers: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for h in sign_ins {
            out.push(h.await.unwrap());
        }
        out
    });

    for a in &answers {
        assert_eq!(
            a.as_ref().ok(),
            Some(&303),
            "{answers:?}; log:\n{}",
            app.log()
        );
    }
    assert!(status.success(), "{status:?}; log:\n{}", app.log());
    assert!(took < PROMPT, "took {took:?}");
    assert_port_closed(app.port);
}

#[test]
fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let mut app = TestApp::spawn(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The client's pool keeps these connections open and idle (keep-alive is 30 s).
    let clients: Vec<_> = (0..4).map(|_| app.client()).collect();
    rt.block_on(async {
        for c in &clients {
            let r = c.get(app.url("/sign-in")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        }
    });
    let asked = Instant::now();
    let status = app.terminate();
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}; log:\n{}", app.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_port_closed(app.port);
}
