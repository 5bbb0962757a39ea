//! Typed values as operators write them.
//!
//! - booleans: `yes no true false on off enable disable 1 0`, any case;
//! - durations: a number with a unit (`20us`, `500ms`, `10s`, `2m`, `1h`, `7d`); a bare number
//!   is seconds; `0` turns a timer off where the key allows it;
//! - sizes: a number of octets, optionally with `k` (1024), `m` (1048576) or `g` (1073741824),
//!   in either case;
//! - lists: comma-separated, blanks trimmed, empty items dropped;
//! - IP networks: an address, or `address/prefix`.

use core::net::IpAddr; // a value type: no IO
use std::time::Duration;

/// Why a value was refused; the caller adds file, line and key.
pub type ValueError = String;

pub fn boolean(v: &str) -> Result<bool, ValueError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "enable" | "enabled" | "1" => Ok(true),
        "no" | "false" | "off" | "disable" | "disabled" | "0" => Ok(false),
        _ => Err(format!(
            "{v:?} is not a boolean (yes/no, true/false, on/off, 1/0)"
        )),
    }
}

pub fn duration(v: &str) -> Result<Duration, ValueError> {
    let t = v.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{v:?} is not a duration (for example 500ms, 10s, 2m, 1h)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => n,
        "us" | "µs" => n / 1_000_000.0,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        other => {
            return Err(format!(
                "{v:?}: unknown unit {other:?} (use us, ms, s, m or h)"
            ))
        }
    };
    if !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("{v:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn size(v: &str) -> Result<u64, ValueError> {
    let t = v.trim().to_ascii_lowercase();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t.as_str(), 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{v:?} is not a size in octets (for example 4096, 64k, 1m)"))
}

/// A duration written back as an operator would write it: in the largest unit that divides it
/// (`48h` is `2d`, `90s` is `90s`), to the microsecond.
pub fn duration_text(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        return "0".into();
    }
    let units = [
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("m", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1000),
    ];
    match units.iter().find(|(_, n)| us % n == 0) {
        Some((unit, n)) => format!("{}{unit}", us / n),
        None => format!("{us}us"),
    }
}

/// A size written back in the largest of `G`, `M`, `K` that divides it (`67108864` is `64M`).
pub fn size_text(n: u64) -> String {
    match [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
        .iter()
        .find(|(_, m)| n > 0 && n % m == 0)
    {
        Some((unit, m)) => format!("{}{unit}", n / m),
        None => n.to_string(),
    }
}

pub fn number<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, ValueError> {
    v.trim().parse().map_err(|_| format!("{v:?} is not {what}"))
}

pub fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// An IP network: address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(v: &str) -> Result<IpNet, ValueError> {
        let (a, p) = match v.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (v.trim(), None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{v:?} is not an IP address or network (10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{v:?}: prefix must be 0-{max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl core::fmt::Display for IpNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_operators_write_them() {
        assert_eq!(boolean("Yes"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("20us"), Ok(Duration::from_micros(20)));
        assert!(duration("10x").unwrap_err().contains("unknown unit"));
        assert_eq!(size("64k"), Ok(65536));
        assert!(size("lots").is_err());
        assert_eq!(list(" a, b,,c "), vec!["a", "b", "c"]);
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn durations_take_days_for_message_validity() {
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(duration("0.5d"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("48h"), duration("2d"));
        assert_eq!(duration("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert!(duration("366d").unwrap_err().contains("out of range"));
    }

    #[test]
    fn sizes_take_k_m_and_g_in_either_case() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size("64m"), Ok(64 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size(" 2 g "), Ok(2 << 30));
        assert_eq!(size("512K"), Ok(512 << 10));
        assert!(size("1t").is_err());
        assert!(size("g").is_err());
        assert!(size("-1m").is_err());
        assert!(size("99999999999g").unwrap_err().contains("is not a size"));
    }

    #[test]
    fn durations_and_sizes_are_written_back_in_their_largest_unit() {
        assert_eq!(duration_text(Duration::ZERO), "0");
        assert_eq!(duration_text(Duration::from_secs(48 * 3600)), "2d");
        assert_eq!(duration_text(Duration::from_secs(300)), "5m");
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text(Duration::from_micros(250)), "250us");
        assert_eq!(size_text(64 << 20), "64M");
        assert_eq!(size_text(1 << 30), "1G");
        assert_eq!(size_text(1536), "1536");
        assert_eq!(size_text(1000), "1000");
        assert_eq!(size_text(0), "0");
    }
}
