//! PostgreSQL for the black-box tests: a fresh database per test on the server that
//! `scripts/test.sh` starts (`GATEHOUSE_TEST_PG`), or a private server ([`PgCluster`]) a test may
//! stop and start. A missing server is a failure, never a skip. `both_backends!` runs an
//! `async fn(Backend)` test once on SQLite and once on PostgreSQL.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The test server's administrative URL.
pub fn pg_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_PG is not set: these tests need PostgreSQL (scripts/test.sh starts \
             a throwaway server; docs/development.md says how to run one by hand)"
        )
    })
}

/// 32 random bytes as hex: a secret key for instances that share a database.
pub fn random_key_hex() -> String {
    let mut b = [0u8; 32];
    getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("read /dev/urandom");
}

/// Runs `f` with a fresh connection to `url` on a thread of its own with its own runtime, so
/// callers in any runtime (or none) may block on it. Every one-off SQL of the tests goes
/// through here.
pub fn with_pg_client<T: Send + 'static>(
    url: &str,
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e}"));
            let conn = tokio::spawn(connection);
            let out = f(&client).await;
            drop(client);
            let _ = conn.await;
            out
        })
    })
    .join()
    .unwrap()
}

/// Runs SQL on the database at `url`.
pub fn pg_execute(url: &str, sql: &str) {
    let sql = sql.to_owned();
    with_pg_client(url, async move |client| {
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// One value of a query on the database at `url`, as text.
pub fn pg_query_text(url: &str, sql: &str) -> Option<String> {
    let sql = sql.to_owned();
    with_pg_client(url, async move |client| {
        let rows = client
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
    })
}

/// A new empty database on the test server; its URL.
pub fn fresh_pg_database() -> String {
    database_on(&pg_admin_url())
}

fn database_on(admin: &str) -> String {
    let mut b = [0u8; 8];
    getrandom(&mut b);
    let name = format!(
        "t_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    pg_execute(admin, &format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(admin).expect("a URL");
    url.set_path(&name);
    url.to_string()
}

/// The newest Debian PostgreSQL's binaries.
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql): scripts/test.sh installs it")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("no PostgreSQL initdb under /usr/lib/postgresql/*/bin")
}

/// A private PostgreSQL server on a free loopback port, for tests that stop and start it.
/// Stopped and deleted on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PgCluster {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-pgc")
            .tempdir_in("/tmp")
            .unwrap();
        let port = super::ports::free_port();
        let cluster = Self { dir, port };
        cluster.chown();
        let initdb = cluster
            .as_pg(&pg_bin().join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(cluster.data())
            .output()
            .expect("run initdb");
        assert!(initdb.status.success(), "initdb: {initdb:?}");
        cluster.run();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// initdb refuses to run as root: the cluster then belongs to the `postgres` user.
    fn as_pg(&self, program: &std::path::Path) -> Command {
        if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn chown(&self) {
        if unsafe_is_root() {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(self.dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn run(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .as_pg(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-o", &opts, "start"])
            .output()
            .expect("pg_ctl start");
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast: connections are cut, as in an outage).
    pub fn stop(&self) {
        let _ = self
            .as_pg(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new empty database on this server.
    pub fn fresh_database(&self) -> String {
        database_on(&self.admin_url())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs each named `async fn(Backend)` test on both backends: `both_backends!(a, b)` makes
/// `a::sqlite`, `a::postgres`, `b::sqlite`, `b::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                use $crate::common::Backend;
                #[tokio::test]
                async fn sqlite() {
                    super::$test(Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$test(Backend::Postgres).await
                }
            }
        )+
    };
}
