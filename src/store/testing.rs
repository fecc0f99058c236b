//! Test databases on either backend, so the store's contract tests run the same code against
//! SQLite and PostgreSQL (`both_backends!`). PostgreSQL comes from `GATEHOUSE_TEST_PG` (an
//! administrative URL, set by `scripts/test.sh`, which starts a throwaway server); each test gets
//! a database of its own, so tests run in parallel. A missing server is a failure, not a skip.

use std::path::PathBuf;

use super::Store;
use super::postgres::PgOptions;

/// A well-formed Argon2id PHC string for users the tests create (never verified against).
pub const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";

/// Creates `name` (no email, no full name) and answers its id.
pub async fn user_id(s: &Store, name: &str) -> i64 {
    s.create_user(
        &crate::domain::Username::parse(name).unwrap(),
        None,
        None,
        HASH,
        1,
    )
    .await
    .unwrap()
    .unwrap()
    .id
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database; [`TestDb::store`] opens (another) store on it.
pub struct TestDb {
    /// The SQLite file's directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// What `--database` would say: the file, or the URL.
    pub location: PathBuf,
    pub backend: Backend,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let location = match backend {
            Backend::Sqlite => dir.path().join("users.database"),
            Backend::Postgres => PathBuf::from(fresh_pg_database()),
        };
        Self {
            dir,
            location,
            backend,
        }
    }

    /// A store on this database (each call opens a new one: as another process would).
    pub fn store(&self) -> Store {
        Store::open_with(&self.location, &small_pool()).expect("open the test database")
    }

    /// The PostgreSQL URL (panics on SQLite).
    pub fn url(&self) -> &str {
        assert_eq!(self.backend, Backend::Postgres);
        self.location.to_str().expect("a UTF-8 URL")
    }
}

fn small_pool() -> PgOptions {
    PgOptions {
        pool_size: 4,
        ..PgOptions::default()
    }
}

/// The administrative URL of the test server.
pub fn pg_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_PG is not set: these tests need a PostgreSQL server \
             (scripts/test.sh starts one; see docs/development.md)"
        )
    })
}

/// Creates an empty database with a random name on the test server; returns its URL.
pub fn fresh_pg_database() -> String {
    let admin = pg_admin_url();
    let name = format!("t_{}", hex::encode(rand_bytes()));
    let create = format!("CREATE DATABASE {name}");
    with_pg_client(&admin, async move |client| {
        client
            .batch_execute(&create)
            .await
            .expect("CREATE DATABASE")
    });
    let mut url = url::Url::parse(&admin).expect("GATEHOUSE_TEST_PG is a URL");
    url.set_path(&name);
    url.to_string()
}

/// A connection to `url` for SQL behind the store's back, its I/O task on the current runtime
/// (it ends when the client is dropped).
pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    pg_connect(url).await.0
}

async fn pg_connect(url: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {url}: {e}"));
    let io = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, io)
}

/// Runs `f` with a connection to `url` on a thread and runtime of its own, so callers in any
/// runtime (or none) may block on it; the connection is closed before it returns.
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
            let (client, io) = pg_connect(&url).await;
            let out = f(&client).await;
            drop(client);
            let _ = io.await;
            out
        })
    })
    .join()
    .unwrap()
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// Runs an `async fn(Backend)` test once per backend: `both_backends!(name, other, …)` makes
/// `name::sqlite` and `name::postgres`.
#[macro_export]
#[doc(hidden)]
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                use $crate::store::testing::Backend;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$test(Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test(Backend::Postgres).await
                }
            }
        )+
    };
}
