//! RFC 3339 times for Ollama's `modified_at` and `expires_at` (UTC, whole seconds).

use std::time::SystemTime;

/// The latest time written (Ollama writes a far future `expires_at` for a model that stays).
pub(crate) const FAR_FUTURE: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// Seconds since the epoch of `t` (0 before it).
pub(crate) fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now, in RFC 3339.
pub(crate) fn now() -> String {
    rfc3339(secs(SystemTime::now()))
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let secs = secs.min(FAR_FUTURE);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = hearth_engine::template::civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_200 + 3_661), "2026-12-01T01:01:01Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }
}
