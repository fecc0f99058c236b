//! `/healthz` runs its database check on the store's own fixed pool, never `web::block`, whose
//! pool grows to 512 threads under a flood.

use crate::common::*;

/// Threads of `pid` named like tokio's blocking pool (what `web::block` runs on):
/// `tokio-rt-worker`, or `tokio-runtime-worker` in older tokio (names are cut at 15 bytes).
fn blocking_pool_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("tokio-r"))
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_flood_of_health_checks_starts_no_blocking_pool_threads() {
    let app = TestApp::spawn(&[]);
    let pid = app.pid().unwrap();
    let before = blocking_pool_threads(pid);
    let c = app.client();
    let statuses = futures_util::future::join_all((0..64).map(|_| {
        let c = c.clone();
        let url = app.url("/healthz");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(blocking_pool_threads(pid), before);
}
