//! Prometheus metrics (to be filled in): the event counters the flows report into.

/// One audited event (`kind` e.g. `sign_in`, `outcome` e.g. `ok`, `failed`, `locked`,
/// `throttled`), counted by kind and outcome.
pub fn event(_kind: &'static str, _outcome: &'static str) {}
