//! The Prometheus metrics endpoint: scraping it and reading samples.

use super::server::TestApp;

/// GETs `/metrics` from the app's metrics server (which must be on) and returns the text.
pub async fn scrape_metrics(app: &TestApp) -> String {
    let base = app
        .metrics_address()
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{}", app.log()));
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of sample `name` whose labels are exactly `labels` (any order) in metrics text.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want = labels.to_vec();
    want.sort_unstable();
    metric_samples(text, name)
        .into_iter()
        .find(|(got, _)| {
            let mut got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            got.sort_unstable();
            got == want
        })
        .map(|(_, v)| v)
}

/// Every sample of `name` in metrics text: (labels, value). Label values are route patterns,
/// methods and outcomes, so they hold no `,` or escaped quote.
pub fn metric_samples(text: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let labels = rest
                .strip_suffix('}')?
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect::<Option<Vec<_>>>()?;
            Some((labels, value.parse().ok()?))
        })
        .collect()
}
