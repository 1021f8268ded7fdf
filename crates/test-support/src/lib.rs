//! Helpers for integration tests: the real server on a random port over real HTTP, with a
//! fresh SQLite file or a fresh PostgreSQL database per test.

use std::net::SocketAddr;
use std::time::Duration;

use helse_server::{AuthMode, Limits, Server, ServerConfig, SqliteDurability};
use helse_store::StoreLocation;
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed async test fn once per store (`use helse_test_support::on_both_stores`).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::Backend::Postgres).await }
        }
    )*};
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    _store: FreshStore,
    /// The server's store, for what tests set up behind the API (OAuth clients).
    pub store: std::sync::Arc<dyn helse_store::ResourceStore>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// The PostgreSQL server the tests use. `scripts/test` starts one and sets this; running the
/// PostgreSQL half of the suite without it is an error, never a skip.
pub fn postgres_admin_url() -> String {
    std::env::var("HELSE_TEST_POSTGRES_URL").expect(
        "HELSE_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL",
    )
}

/// Opens a store directly (beside or instead of a server), as `helse serve --store` names it.
pub async fn open_store(location: &str) -> std::sync::Arc<dyn helse_store::ResourceStore> {
    let location = StoreLocation::parse(location).expect("a store location");
    helse_server::open_store(&location, SqliteDurability::Normal, 4).await.expect("the store opens")
}

/// Creates an empty database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let (client, conn) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let name = format!("helse_test_{}", uuid_like());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("HELSE_TEST_POSTGRES_URL must end in /DATABASE"),
    }
}

/// An empty store: a SQLite file in a temporary folder, or a new PostgreSQL database.
pub struct FreshStore {
    /// As `helse serve --store` takes it.
    pub location: String,
    _dir: Option<tempfile::TempDir>,
}

impl FreshStore {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let location = format!("sqlite:{}", dir.path().join("helse.db").display());
                FreshStore { location, _dir: Some(dir) }
            }
            Backend::Postgres => FreshStore { location: fresh_postgres_database().await, _dir: None },
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{}_{}", std::process::id(), nanos % 1_000_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

impl TestServer {
    /// A server with authorisation off (`--no-auth`), as tests of other features use.
    pub async fn start(backend: Backend) -> Self {
        Self::start_adjusted(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, limits: Limits) -> Self {
        Self::start_adjusted(backend, |c| c.limits = limits).await
    }

    /// A server with authorisation on, as in production.
    pub async fn start_secured(backend: Backend) -> Self {
        Self::start_adjusted(backend, |c| c.auth = AuthMode::Enforced).await
    }

    /// A server whose configuration the test adjusts (from authorisation off, default
    /// limits, no trusted issuers).
    pub async fn start_adjusted(backend: Backend, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let store = FreshStore::new(backend).await;
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            base_url: None,
            store: StoreLocation::parse(&store.location).unwrap(),
            sqlite_durability: SqliteDurability::Normal,
            postgres_pool_size: 8,
            limits: Limits::default(),
            auth: AuthMode::Disabled,
            trusted_issuers: Vec::new(),
        };
        adjust(&mut config);
        let server = Server::bind(&config).await.expect("server starts");
        let addr = server.local_addr;
        let shared_store = server.store();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            addr,
            base: format!("http://{addr}/fhir"),
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            _store: store,
            store: shared_store,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        if let Some(b) = body {
            req = req.header("content-type", "application/fhir+json").body(serde_json::to_vec(b).unwrap());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some(body), &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }

    /// The number of versions in the whole store (system history total).
    pub async fn version_count(&self) -> u64 {
        let r = self.get("_history?_count=1").await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["total"].as_u64().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Reply { status, headers, text }
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// The `response.status` of each entry of a batch- or transaction-response Bundle.
    pub fn entry_statuses(&self) -> Vec<String> {
        self.json()["entry"]
            .as_array()
            .unwrap_or_else(|| panic!("no entries: {}", self.text))
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The first issue's code, for OperationOutcome replies.
    pub fn issue_code(&self) -> String {
        let v = self.json();
        assert_eq!(v["resourceType"], "OperationOutcome", "{}", self.text);
        v["issue"][0]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the `helse` binary (`bin`, from `env!("CARGO_BIN_EXE_helse")`) serving `store` on
/// `port`, and waits until it is ready.
pub async fn spawn_helse(bin: &str, store: &str, port: u16) -> std::process::Child {
    spawn_helse_with(bin, store, port, &[]).await
}

/// [`spawn_helse`] with extra `serve` flags.
pub async fn spawn_helse_with(bin: &str, store: &str, port: u16, extra: &[&str]) -> std::process::Child {
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--no-auth", "--store", store, "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("helse starts");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await
            && r.status() == 200
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("helse did not become ready");
}
