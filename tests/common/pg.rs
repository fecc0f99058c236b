//! PostgreSQL for the black-box suites: a fresh database per test on the server named by
//! `GATEHOUSE_TEST_PG` (an administrative URL; `scripts/test.sh` starts a throwaway server),
//! direct queries to see what the binary stored, and commands run with environment variables.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::admin::AdminRun;
use super::server::FAST_KDF;

fn admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_PG is not set: these tests need a PostgreSQL server \
             (scripts/test.sh starts one)"
        )
    })
}

/// Runs `f` with a client on `url`, on a thread and runtime of its own (callable from sync
/// code and from inside a test's runtime alike).
fn with_client<T: Send>(
    url: &str,
    f: impl for<'c> FnOnce(
        &'c tokio_postgres::Client,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'c>>
    + Send,
) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e}"));
                let io = tokio::spawn(connection);
                let out = f(&client).await;
                drop(client);
                let _ = io.await;
                out
            })
        })
        .join()
        .unwrap()
    })
}

/// Creates an empty database `t_<random>` on the test server; returns its URL.
pub fn fresh_database() -> String {
    let admin = admin_url();
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let name = format!("t_{}", hex::encode(bytes));
    let create = format!("CREATE DATABASE {name}");
    with_client(&admin, |c| {
        Box::pin(async move { c.batch_execute(&create).await.expect("CREATE DATABASE") })
    });
    let mut url = url::Url::parse(&admin).expect("GATEHOUSE_TEST_PG is a URL");
    url.set_path(&name);
    url.to_string()
}

/// Runs SQL statements on `url`.
pub fn pg_execute(url: &str, sql: &str) {
    let sql = sql.to_owned();
    with_client(url, |c| {
        Box::pin(async move { c.batch_execute(&sql).await.expect("SQL runs") })
    });
}

/// The first column of the first row of `sql`, a number.
pub fn pg_number(url: &str, sql: &str) -> i64 {
    let sql = sql.to_owned();
    with_client(url, |c| {
        Box::pin(async move { c.query_one(&sql, &[]).await.expect("a row").get(0) })
    })
}

/// Like [`super::admin::admin_at`], with environment variables set for the command.
pub fn admin_with_env(
    database: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> AdminRun {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .arg("--database")
        .arg(database)
        .args(FAST_KDF)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse admin command");
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("admin command output");
    AdminRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `gatehouse serve` with `args` (a free port, fast KDF costs) for a server expected to
/// refuse to start: how it exited, or `None` if it still ran after 30 s (it is killed).
pub fn serve_refusal(args: &[&str]) -> Option<AdminRun> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(FAST_KDF)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait for gatehouse").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("gatehouse output");
    Some(AdminRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
