//! Typed values as operators write them.
//!
//! - booleans: `yes no true false on off enable disable 1 0`, any case;
//! - durations: a number with a unit (`500ms`, `10s`, `2m`, `1h`); a bare number is seconds;
//!   `0` turns a timer off where the key allows it;
//! - sizes: a number of octets, optionally with `k` (1024) or `m` (1048576);
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
    let (num, mult) = match t.strip_suffix('k') {
        Some(n) => (n, 1024),
        None => match t.strip_suffix('m') {
            Some(n) => (n, 1024 * 1024),
            None => (t.as_str(), 1),
        },
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{v:?} is not a size in octets (for example 4096, 64k, 1m)"))
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
}
