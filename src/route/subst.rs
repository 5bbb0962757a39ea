//! Substitutions in route values, in Yate's order: captures `\0`..`\9`, then `${param}`,
//! then `$(function,...)`.
//!
//! Faithful to regexroute's behaviour where it surprises: `\9` is always empty (nine match
//! slots: the whole match and eight groups); a regex with no groups gives `\1` = `\0`; a
//! missing parameter is empty text; `$(..)` does not nest (the call ends at the first `)`),
//! and a result that forms a new `$(` is evaluated again; comparisons return the words `true`
//! and `false`; arithmetic pads its result with zeros to the length of its first argument.

use std::fmt::Write;

/// The match of the last condition evaluated: the whole match and up to eight groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures {
    /// `\0`..`\8`; `None` for a group that took no part. Empty after a negated match.
    pub groups: Vec<Option<String>>,
}

impl Captures {
    pub fn from_regex(c: &regex::Captures<'_>) -> Captures {
        let mut groups: Vec<Option<String>> = c
            .iter()
            .take(9)
            .map(|m| m.map(|m| m.as_str().to_string()))
            .collect();
        // Groups after the last one that took part are reported empty as well.
        while groups.len() > 1 && groups.last().is_some_and(Option::is_none) {
            groups.pop();
        }
        Captures { groups }
    }

    fn get(&self, n: usize) -> &str {
        if n == 9 {
            return "";
        }
        // With no groups at all, `\1` is the whole match (a regexec quirk Yate keeps).
        let n = if n == 1 && self.groups.len() == 1 {
            0
        } else {
            n
        };
        self.groups.get(n).and_then(|g| g.as_deref()).unwrap_or("")
    }
}

/// Message parameters: names and values in order; a name may repeat (Yate's NamedList).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params {
    pub list: Vec<(String, String)>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the first parameter with this name, or appends one.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.list.iter_mut().find(|(n, _)| n == name) {
            Some(p) => {
                // Reuses the value's allocation: a shard refills one list per message.
                p.1.clear();
                p.1.push_str(value);
            }
            None => self.list.push((name.to_string(), value.to_string())),
        }
    }

    /// Removes every parameter with this name.
    pub fn clear(&mut self, name: &str) {
        self.list.retain(|(n, _)| n != name);
    }
}

impl<S: Into<String>, T: Into<String>> FromIterator<(S, T)> for Params {
    fn from_iter<I: IntoIterator<Item = (S, T)>>(iter: I) -> Self {
        Params {
            list: iter
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
        }
    }
}

/// What function evaluation may touch besides its arguments.
pub trait Env {
    /// A global variable (`$name`), or `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
    fn set_var(&mut self, name: &str, value: &str);
    /// Uniform random digit 0-9.
    fn random_digit(&mut self) -> u8;
    /// Marks the evaluation as depending on state or chance (not cacheable).
    fn impure(&mut self);
}

/// `\0`..`\9` and `\\`.
pub fn captures(s: &str, caps: &Captures) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.peek().copied() {
                Some(d @ '0'..='9') => {
                    it.next();
                    out.push_str(caps.get(d as usize - '0' as usize));
                    continue;
                }
                Some('\\') => {
                    it.next();
                    out.push('\\');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// `${name}` and `${name$default}` from the message parameters.
pub fn params(s: &str, p: &Params) -> String {
    params_with(s, p, false)
}

fn params_with(s: &str, p: &Params, url: bool) -> String {
    if !s.contains("${") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            // Unclosed: the rest stays as written.
            out.push_str(&rest[at..]);
            return out;
        };
        let inner = after[..end].trim();
        let (name, dflt) = match inner.split_once('$') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (inner, None),
        };
        let v = p.get(name).unwrap_or(dflt.unwrap_or(""));
        if url {
            crate::http::form::percent_encode_into(v.as_bytes(), &mut out);
        } else {
            out.push_str(v);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every `$(...)` call, left to right, rescanning after each replacement.
pub fn functions(s: &str, env: &mut dyn Env) -> String {
    let mut s = s.to_string();
    // A result may form a new call; bound the rescans so that no text loops forever.
    for _ in 0..256 {
        let Some(at) = s.find("$(") else { break };
        let Some(len) = s[at + 2..].find(')') else {
            break;
        };
        let call = s[at + 2..at + 2 + len].trim().to_string();
        let result = eval_function(&call, env);
        s.replace_range(at..at + 2 + len + 1, &result);
    }
    s
}

/// All three, in order.
pub fn substitute(s: &str, caps: &Captures, p: &Params, env: &mut dyn Env) -> String {
    functions(&params(&captures(s, caps), p), env)
}

/// As [`substitute`] for a URL target (`http://...`, `https://...`): parameter values are
/// percent-encoded, so a value with `&`, `=`, spaces or non-ASCII text stays one value.
pub fn substitute_url(s: &str, caps: &Captures, p: &Params, env: &mut dyn Env) -> String {
    functions(&params_with(&captures(s, caps), p, true), env)
}

/// The functions regexroute knows (the ones that make sense outside Yate's engine).
pub const FUNCTIONS: &[&str] = &[
    "", "$", "length", "upper", "lower", "chr", "add", "+", "sub", "-", "mul", "*", "div", "/",
    "mod", "%", "eq", "ne", "lt", "<", "gt", ">", "le", "ge", "streq", "strne", "strpos", "random",
    "hex", "index", "rotate",
];

/// Splits a call into its name and the rest (after the first comma at position > 0).
pub fn split_call(call: &str) -> (&str, Option<&str>) {
    match call.find(',') {
        Some(i) if i > 0 => (&call[..i], Some(&call[i + 1..])),
        _ => (call, None),
    }
}

fn dec(s: &str) -> i64 {
    s.trim().parse().unwrap_or(0)
}

/// Base 0 integers: `0x` hex, leading `0` octal, else decimal.
fn base0(s: &str) -> i64 {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).unwrap_or(0)
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).unwrap_or(0)
    } else {
        t.parse().unwrap_or(0)
    };
    if neg {
        -v
    } else {
        v
    }
}

fn truth(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// An argument: a global variable when it starts with `$`, itself otherwise.
fn va(env: &mut dyn Env, a: &str) -> String {
    match a.strip_prefix('$') {
        Some(var) if !var.is_empty() => {
            env.impure();
            env.var(var).unwrap_or_default()
        }
        _ => a.to_string(),
    }
}

fn eval_function(call: &str, env: &mut dyn Env) -> String {
    let (name, args) = split_call(call);
    match (name, args) {
        ("", None) => ";".into(),
        ("$", None) => "$".into(),
        (n, None) if n.starts_with("++") || n.starts_with("--") => {
            let target = &n[2..];
            let cur = dec(&va(env, target));
            let next = if n.starts_with("++") {
                cur + 1
            } else {
                cur - 1
            };
            if let Some(var) = target.strip_prefix('$') {
                env.set_var(var, &next.to_string());
            }
            next.to_string()
        }
        ("length", Some(a)) => va(env, a).chars().count().to_string(),
        ("upper", Some(a)) => va(env, a).to_ascii_uppercase(),
        ("lower", Some(a)) => va(env, a).to_ascii_lowercase(),
        ("chr", Some(a)) => {
            let c = (base0(&va(env, a)) & 0xFF) as u8;
            if c == 0 {
                String::new()
            } else {
                (c as char).to_string()
            }
        }
        ("add" | "+" | "sub" | "-" | "mul" | "*" | "div" | "/" | "mod" | "%", Some(a)) => {
            let parts: Vec<&str> = a.splitn(3, ',').collect();
            if parts.len() < 2 {
                // Two operands or nothing, as in Yate.
                return String::new();
            }
            let raw_a = parts[0];
            let x = dec(&va(env, raw_a));
            let y = dec(&va(env, parts.get(1).copied().unwrap_or("")));
            let r = match name {
                "add" | "+" => x.wrapping_add(y),
                "sub" | "-" => x.wrapping_sub(y),
                "mul" | "*" => x.wrapping_mul(y),
                "div" | "/" => x.checked_div(y).unwrap_or(0),
                _ => x.checked_rem(y).unwrap_or(0),
            };
            let width = match parts.get(2) {
                Some(l) => base0(&va(env, l)).max(0) as usize,
                None => raw_a.len(),
            }
            .min(64);
            let digits = r.unsigned_abs().to_string();
            let sign = if r < 0 { "-" } else { "" };
            let pad = width.saturating_sub(digits.len() + sign.len());
            format!("{sign}{}{digits}", "0".repeat(pad))
        }
        ("eq" | "ne" | "lt" | "<" | "gt" | ">" | "le" | "ge", Some(a)) => {
            let Some((x, y)) = a.split_once(',') else {
                return String::new();
            };
            let (x, y) = (dec(&va(env, x)), dec(&va(env, y)));
            truth(match name {
                "eq" => x == y,
                "ne" => x != y,
                "lt" | "<" => x < y,
                "gt" | ">" => x > y,
                "le" => x <= y,
                _ => x >= y,
            })
        }
        ("streq" | "strne", Some(a)) => {
            let Some((x, y)) = a.split_once(',') else {
                return String::new();
            };
            truth((va(env, x) == va(env, y)) == (name == "streq"))
        }
        ("strpos", Some(a)) => {
            let Some((needle, hay)) = a.split_once(',') else {
                return String::new();
            };
            let (needle, hay) = (va(env, needle), va(env, hay));
            hay.find(&needle).map_or(-1i64, |i| i as i64).to_string()
        }
        ("random", Some(a)) => {
            env.impure();
            let t = va(env, a);
            let mut out = String::with_capacity(t.len());
            for c in t.chars() {
                if c == '?' {
                    out.push((b'0' + env.random_digit() % 10) as char);
                } else {
                    out.push(c);
                }
            }
            out
        }
        ("hex", Some(a)) => {
            let parts: Vec<&str> = a.splitn(3, ',').collect();
            let n = base0(parts[0]) as u32;
            let bytes = n.to_le_bytes();
            let len = match parts.get(1).map(|l| base0(l)) {
                Some(l) if l > 0 => (l as usize).min(4),
                _ => 4 - bytes.iter().rev().take_while(|&&b| b == 0).count().min(3),
            };
            let sep = match parts.get(2) {
                Some(s) => s.chars().next().map(|c| c.to_string()).unwrap_or_default(),
                None => " ".to_string(),
            };
            let mut out = String::new();
            for (i, b) in bytes.iter().take(len).enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                let _ = write!(out, "{b:02x}");
            }
            out
        }
        ("index" | "rotate", Some(a)) => {
            let mut parts = a.split(',');
            let n_raw = parts.next().unwrap_or("");
            let items: Vec<String> = parts.map(|p| va(env, p)).collect();
            if items.is_empty() {
                return String::new();
            }
            let n = dec(&va(env, n_raw)).rem_euclid(items.len() as i64) as usize;
            if let Some(var) = n_raw.strip_prefix('$') {
                env.set_var(var, &((n + 1) % items.len()).to_string());
            }
            if name == "index" {
                items[n].clone()
            } else {
                let rotated: Vec<&str> = items[n..]
                    .iter()
                    .chain(items[..n].iter())
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                rotated.join(" ")
            }
        }
        // No comma and no known name: a global variable.
        (var, None) => {
            env.impure();
            env.var(var).unwrap_or_default()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct TestEnv {
        vars: std::collections::HashMap<String, String>,
        impure: bool,
    }
    impl Env for TestEnv {
        fn var(&self, n: &str) -> Option<String> {
            self.vars.get(n).cloned()
        }
        fn set_var(&mut self, n: &str, v: &str) {
            self.vars.insert(n.into(), v.into());
        }
        fn random_digit(&mut self) -> u8 {
            7
        }
        fn impure(&mut self) {
            self.impure = true;
        }
    }

    fn f(s: &str) -> String {
        functions(s, &mut TestEnv::default())
    }

    #[test]
    fn functions_behave_as_regexroute_documents() {
        assert_eq!(f("a$()b$($)c"), "a;b$c");
        assert_eq!(f("$(length,hello)"), "5");
        assert_eq!(f("$(upper,ab,c)"), "AB,C");
        assert_eq!(f("$(add,007,1)"), "008");
        assert_eq!(f("$(add,1,2,5)"), "00003");
        assert_eq!(f("$(sub,5,10)"), "-5");
        assert_eq!(f("$(sub,5,10,4)"), "-005");
        assert_eq!(f("$(div,7,0)"), "0");
        assert_eq!(f("$(mod,7,3)"), "1");
        assert_eq!(f("$(eq,1,01)"), "true");
        assert_eq!(f("$(lt,2,1)"), "false");
        assert_eq!(f("$(lower,AbC)"), "abc");
        assert_eq!(f("$(mul,6,7)"), "42");
        assert_eq!(f("$(div,7,2)"), "3");
        assert_eq!(
            f("$(ne,1,2)$(gt,2,1)$(le,2,2)$(ge,1,2)"),
            "truetruetruefalse"
        );
        assert_eq!(f("$(streq,a,a)$(strne,a,a)"), "truefalse");
        assert_eq!(f("$(index,1,a,b,c)$(index,4,a,b,c)"), "bb");
        assert_eq!(f("$(rotate,1,a,b,c)"), "b c a");
        assert_eq!(f("$(strpos,b,abc)"), "1");
        assert_eq!(f("$(hex,258)"), "02 01");
        assert_eq!(f("$(hex,258,4,:)"), "02:01:00:00");
        assert_eq!(f("$(chr,65)"), "A");
        // No nesting: the call ends at the first `)`.
        assert_eq!(f("$(add,$(length,ab),1)"), "00000000,1)");
        assert_eq!(f("$(nosuch,1)"), "");
        // Two-operand functions given one: nothing, as in Yate.
        assert_eq!(f("[$(add,5)$(eq,5)$(streq,a)$(strpos,a)]"), "[]");
    }

    #[test]
    fn random_and_variables_are_impure() {
        let mut env = TestEnv::default();
        assert_eq!(functions("$(random,12??)", &mut env), "1277");
        assert!(env.impure);
        let mut env = TestEnv::default();
        assert_eq!(functions("$(++$c)$(++$c)", &mut env), "12");
        assert_eq!(
            functions("$(index,$rr,x,y,z)$(index,$rr,x,y,z)", &mut env),
            "xy"
        );
        assert_eq!(functions("$(c)", &mut env), "2");
    }

    #[test]
    fn captures_and_params() {
        let caps = Captures {
            groups: vec![Some("99".into())],
        };
        assert_eq!(captures(r"\0|\1|\2|\9|\\", &caps), r"99|99|||\");
        let p: Params = [("a", "1"), ("b", "")].into_iter().collect();
        assert_eq!(params("${a}-${b}-${c}-${c$x}-${b$y}", &p), "1---x-");
        // The default is trimmed, as Yate trims it.
        assert_eq!(params("[${c$ x }]", &p), "[x]");
        assert_eq!(params("x${open", &p), "x${open");
    }

    #[test]
    fn url_targets_get_their_values_encoded() {
        let p: Params = [("billid", "a b&c=d"), ("stat", "DELIVRD"), ("t", "é")]
            .into_iter()
            .collect();
        let caps = Captures::default();
        let mut env = TestEnv::default();
        assert_eq!(
            substitute_url(
                "http://h/s?billid=${billid}&status=${stat}&t=${t}",
                &caps,
                &p,
                &mut env
            ),
            "http://h/s?billid=a%20b%26c%3Dd&status=DELIVRD&t=%C3%A9"
        );
        assert_eq!(substitute("x=${billid}", &caps, &p, &mut env), "x=a b&c=d");
    }
}
