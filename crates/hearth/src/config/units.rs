//! Values written with units (sizes, idle timeouts), parsed the same way from a flag, a
//! variable and the settings file, and shown in `--help` as they are written.

use std::time::Duration;

/// A number of bytes: `123`, `512MB`, `8GiB`, `1.5G` (K/M/G/T; `i` or a bare letter = powers
/// of 1024, `B` after a decimal prefix = powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl std::str::FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_bytes(s).map(Bytes).ok_or_else(|| format!("{s:?} is not a size like 8GiB, 512MB or a number of bytes"))
    }
}

impl std::fmt::Display for Bytes {
    /// The largest binary unit that divides the count exactly (`32MiB`), so it parses back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
        match units.iter().find(|(_, shift)| self.0 != 0 && self.0.is_multiple_of(1u64 << shift)) {
            Some((unit, shift)) => write!(f, "{}{unit}", self.0 >> shift),
            None => write!(f, "{}", self.0),
        }
    }
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let pow = |c: char| "kmgt".find(c).map(|i| i as i32 + 1);
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        u => {
            let mut chars = u.chars();
            let p = pow(chars.next()?)?;
            match chars.as_str() {
                "" | "i" | "ib" => 1024f64.powi(p),
                "b" => 1000f64.powi(p),
                _ => return None,
            }
        }
    };
    let v = n * mult;
    (0.0..1.8e19).contains(&v).then_some(v as u64)
}

/// How long an idle model stays loaded: `never`, or a duration (`30m`, `1h30m`, `300`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleUnload(pub Option<Duration>);

impl std::str::FromStr for IdleUnload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("never") {
            return Ok(Self(None));
        }
        match hearth_engine::KeepAlive::parse(&serde_json::Value::String(s.into())) {
            Ok(hearth_engine::KeepAlive::For(d)) => Ok(Self(Some(d))),
            Ok(_) => Ok(Self(None)),
            Err(_) => Err(format!("{s:?} is not a duration like 30m, a number of seconds, or never")),
        }
    }
}

impl std::fmt::Display for IdleUnload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("never"),
            Some(d) => write!(f, "{}", d.as_secs_f64()),
        }
    }
}

/// A number of seconds from a flag, as a duration.
pub fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!((0.0..1e9).contains(&v), "{flag} must be a number of seconds");
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_back() {
        let b = |s: &str| s.parse::<Bytes>().map(|b| b.0);
        assert_eq!(b("512MB"), Ok(512_000_000));
        assert_eq!(b("8G"), Ok(8 << 30));
        assert_eq!(b("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(b("0"), Ok(0));
        assert!(b("lots").is_err() && b("5XB").is_err() && b("-1").is_err());
        for n in [0, 1000, 32 << 20, 3 << 40, (1 << 30) + 1] {
            assert_eq!(Bytes(n).to_string().parse::<Bytes>(), Ok(Bytes(n)), "{n}");
        }
        assert_eq!(Bytes(32 << 20).to_string(), "32MiB");
    }

    #[test]
    fn idle_timeouts_parse_and_print_back() {
        let i = |s: &str| s.parse::<IdleUnload>().map(|i| i.0);
        assert_eq!(i("never"), Ok(None));
        assert_eq!(i("30m"), Ok(Some(Duration::from_secs(1800))));
        assert_eq!(i("90"), Ok(Some(Duration::from_secs(90))));
        assert!(i("soon").is_err());
        for v in [None, Some(Duration::from_secs(300))] {
            assert_eq!(IdleUnload(v).to_string().parse::<IdleUnload>(), Ok(IdleUnload(v)));
        }
    }
}
