//! Pure decisions of model lifecycle: how long a model stays loaded, and which models to unload
//! so that another fits under `--max-loaded-models` and `--memory-budget`.

use crate::error::Shortfall;
use std::time::{Duration, Instant};

/// How long a model stays loaded after its last use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepAlive {
    /// The server's `--idle-unload`.
    #[default]
    Default,
    /// Until unloaded explicitly or evicted for another model.
    Forever,
    /// This long after the last use (zero: unload as soon as it is idle).
    For(Duration),
}

impl KeepAlive {
    /// Parses Ollama's forms: a number of seconds (negative = forever), or a duration string
    /// such as `"5m"`, `"30s"`, `"1h30m"`, `"0"`, `"-1"`.
    ///
    /// # Errors
    /// A message describing the accepted forms.
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        let bad = || format!("keep_alive must be seconds or a duration like \"5m\", got {v}");
        match v {
            serde_json::Value::Null => Ok(Self::Default),
            serde_json::Value::Number(n) => {
                let s = n.as_f64().ok_or_else(bad)?;
                Self::from_secs(s).ok_or_else(bad)
            }
            serde_json::Value::String(s) => parse_duration(s.trim()).ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    fn from_secs(s: f64) -> Option<Self> {
        if !s.is_finite() {
            return None;
        }
        if s < 0.0 {
            return Some(Self::Forever);
        }
        Some(Self::For(Duration::try_from_secs_f64(s).ok()?))
    }

    /// This keep-alive, or the server default (`None` = never) where it would unload the model
    /// sooner: what a caller who may not unload models gets.
    pub fn no_sooner_than(self, default: Option<Duration>) -> Self {
        match (self, default) {
            (Self::For(d), Some(def)) if d >= def => self,
            (Self::For(_), _) => Self::Default,
            _ => self,
        }
    }

    /// When a model used now expires, given the server default (`None` = never).
    pub fn expiry(self, now: Instant, default: Option<Duration>) -> Option<Instant> {
        match self {
            Self::Default => default.and_then(|d| now.checked_add(d)),
            Self::Forever => None,
            Self::For(d) => now.checked_add(d),
        }
    }
}

/// Memory the system can give without swapping (`MemAvailable` of `/proc/meminfo`); `None`
/// where that is not known.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&info)
}

fn parse_meminfo(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn parse_duration(s: &str) -> Option<KeepAlive> {
    if let Ok(n) = s.parse::<f64>() {
        return KeepAlive::from_secs(n);
    }
    if s.starts_with('-') {
        return Some(KeepAlive::Forever);
    }
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            }
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    if !num.is_empty() {
        return None;
    }
    KeepAlive::from_secs(total)
}

/// A loaded model, as the eviction decision sees it.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Model id.
    pub id: String,
    /// Estimated memory.
    pub memory: u64,
    /// Last use.
    pub last_used: Instant,
    /// Running or waiting requests (never unloaded then).
    pub busy: bool,
}

/// The models to unload, least recently used first and never a busy one, so that a model of
/// `incoming` bytes fits beside the rest under `max_models` (0 = no limit) and `budget` bytes
/// (0 = no limit). `Err` says why it cannot fit.
///
/// # Errors
/// When even unloading every idle model leaves too little room.
pub fn evictions(
    resident: &[Resident],
    incoming: u64,
    max_models: usize,
    budget: u64,
) -> Result<Vec<String>, Shortfall> {
    if budget > 0 && incoming > budget {
        return Err(Shortfall::OverBudget { need_mib: incoming >> 20 });
    }
    let mut idle: Vec<&Resident> = resident.iter().filter(|r| !r.busy).collect();
    idle.sort_by_key(|r| r.last_used);
    let mut count = resident.len();
    let mut used: u64 = resident.iter().map(|r| r.memory).sum();
    let fits = |count: usize, used: u64| {
        (max_models == 0 || count < max_models) && (budget == 0 || used.saturating_add(incoming) <= budget)
    };
    let mut out = Vec::new();
    for r in idle {
        if fits(count, used) {
            break;
        }
        out.push(r.id.clone());
        count -= 1;
        used -= r.memory;
    }
    if fits(count, used) {
        Ok(out)
    } else {
        Err(Shortfall::AllBusy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn available_memory_from_meminfo() {
        let info = "MemTotal:       24683520 kB\nMemFree:        19231232 kB\nMemAvailable:   24022016 kB\n";
        assert_eq!(parse_meminfo(info), Some(24_022_016 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: lots\n"), None);
    }

    fn r(id: &str, memory: u64, age: u64, busy: bool) -> Resident {
        let now = Instant::now();
        Resident { id: id.into(), memory, last_used: now - Duration::from_secs(age), busy }
    }

    #[test]
    fn least_recently_used_idle_models_make_room() {
        let loaded = [r("old", 40, 30, false), r("busy", 40, 60, true), r("new", 40, 1, false)];
        assert_eq!(evictions(&loaded, 30, 0, 200).unwrap(), Vec::<String>::new());
        assert_eq!(evictions(&loaded, 50, 0, 160).unwrap(), ["old"]);
        assert_eq!(evictions(&loaded, 90, 0, 160).unwrap(), ["old", "new"]);
        assert_eq!(evictions(&loaded, 130, 0, 160), Err(Shortfall::AllBusy), "the busy one stays");
        assert_eq!(evictions(&loaded, 1, 2, 0).unwrap(), ["old", "new"]);
        assert_eq!(evictions(&loaded, 300 << 20, 0, 200 << 20), Err(Shortfall::OverBudget { need_mib: 300 }));
    }

    #[test]
    fn keep_alive_forms() {
        let p = |v| KeepAlive::parse(&v).unwrap();
        assert_eq!(p(json!(null)), KeepAlive::Default);
        assert_eq!(p(json!(0)), KeepAlive::For(Duration::ZERO));
        assert_eq!(p(json!(-1)), KeepAlive::Forever);
        assert_eq!(p(json!("-1")), KeepAlive::Forever);
        assert_eq!(p(json!("5m")), KeepAlive::For(Duration::from_secs(300)));
        assert_eq!(p(json!("1h30m")), KeepAlive::For(Duration::from_secs(5400)));
        assert_eq!(p(json!("250ms")), KeepAlive::For(Duration::from_millis(250)));
        assert_eq!(p(json!("2.5")), KeepAlive::For(Duration::from_millis(2500)));
        for bad in [json!("5 minutes"), json!("m"), json!(true), json!("5x")] {
            assert!(KeepAlive::parse(&bad).is_err(), "{bad}");
        }
        let now = Instant::now();
        assert_eq!(KeepAlive::Default.expiry(now, None), None);
        let (min, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(KeepAlive::For(Duration::ZERO).no_sooner_than(Some(min)), KeepAlive::Default);
        assert_eq!(KeepAlive::For(hour).no_sooner_than(Some(min)), KeepAlive::For(hour));
        assert_eq!(KeepAlive::For(hour).no_sooner_than(None), KeepAlive::Default, "the default never unloads");
        assert_eq!(KeepAlive::Forever.no_sooner_than(Some(min)), KeepAlive::Forever);
        assert_eq!(KeepAlive::Default.expiry(now, Some(Duration::from_secs(1))), Some(now + Duration::from_secs(1)));
    }
}
