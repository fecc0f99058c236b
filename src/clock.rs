//! Wall-clock time as Unix milliseconds, the unit stored in the database.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 to the second, UTC, for pages and JSON.
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "2026-11-22 20:44 UTC", for people.
pub fn format_human(ms: i64) -> String {
    let rfc = format_ms(ms);
    format!("{} {} UTC", &rfc[..10], &rfc[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(format_human(1_795_000_000_123), "2026-11-18 11:06 UTC");
    }
}
