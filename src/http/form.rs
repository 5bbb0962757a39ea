//! URL-encoded parameters (a query, or an `application/x-www-form-urlencoded` body) and the
//! credentials of HTTP basic authentication.

/// Decodes `%XX` escapes and, in forms, `+` as a space. Octets, not text: Kannel's `text`,
/// `udh` and binary bodies are arbitrary octets. A `%` not followed by two hex digits stays
/// as it is (as browsers and Kannel leave it).
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encodes octets for a URL query value (unreserved characters stay; the rest are `%XX`).
pub fn percent_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    percent_encode_into(s, &mut out);
    out
}

/// [`percent_encode`], appending to `out`.
pub fn percent_encode_into(s: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        }
    }
}

/// The `name=value` pairs of a query or form, decoded, in order (a name can repeat).
pub fn pairs(s: &[u8]) -> Vec<(String, Vec<u8>)> {
    s.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = match memchr::memchr(b'=', p) {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &[][..]),
            };
            (
                String::from_utf8_lossy(&percent_decode(name)).into_owned(),
                percent_decode(value),
            )
        })
        .collect()
}

/// The user and password of an `Authorization: Basic ...` value.
pub fn basic_auth(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 (RFC 4648, padding optional).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover sextet cannot be an encoding of anything.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_plus_decode() {
        assert_eq!(percent_decode(b"a+b%20c%2B%e2%82%ac"), "a b c+€".as_bytes());
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(percent_decode(b"%00%ff"), [0, 0xff]);
    }

    #[test]
    fn encoding_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(percent_decode(percent_encode(&all).as_bytes()), all);
        assert_eq!(percent_encode(b"a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn pairs_keep_order_and_repeats() {
        let p = pairs(b"to=1&to=2&text=hi+there&flag&=x");
        assert_eq!(p[0], ("to".into(), b"1".to_vec()));
        assert_eq!(p[1], ("to".into(), b"2".to_vec()));
        assert_eq!(p[2], ("text".into(), b"hi there".to_vec()));
        assert_eq!(p[3], ("flag".into(), vec![]));
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn basic_credentials() {
        // "demo:pa:ss" (a colon in the password stays in the password).
        assert_eq!(
            basic_auth("Basic ZGVtbzpwYTpzcw=="),
            Some(("demo".into(), "pa:ss".into()))
        );
        assert_eq!(
            basic_auth("basic ZGVtbzpwYTpzcw"),
            Some(("demo".into(), "pa:ss".into()))
        );
        assert_eq!(basic_auth("Bearer abc"), None);
        assert_eq!(basic_auth("Basic !!!"), None);
        assert_eq!(basic_auth("Basic ZGVtbw=="), None);
        assert_eq!(base64_decode("QQ"), Some(b"A".to_vec()));
        assert_eq!(base64_decode("Q"), None);
    }
}
