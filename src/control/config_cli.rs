//! `smppgw config get|set|delete KIND [NAME] [key=value ...]`: the configuration API from a
//! shell. `set` reads the resource first and writes it back with the given keys changed
//! (`key=` removes one), under the version it read, so a change made meanwhile is not
//! overwritten (the gateway answers 409 and nothing changes).

use std::net::SocketAddr;

use serde_json::Value;

use super::client::{request_with, Answer};

const USAGE: &str = "smppgw config get KIND [NAME] | set KIND [NAME] key=value... | set routes FILE | delete KIND NAME\n  KIND: accounts, clients, listeners, routes, general";

/// Runs one `config` command against the admin endpoint at `addr`, with `auth` header
/// fields; `json`: print the endpoint's answers as they are.
pub fn run(
    addr: SocketAddr,
    auth: &[(&str, String)],
    args: &[String],
    json: bool,
) -> Result<(), String> {
    let (verb, rest) = args.split_first().ok_or(USAGE)?;
    let (kind, rest) = rest.split_first().ok_or(USAGE)?;
    let kind = match kind.as_str() {
        "account" | "accounts" => "accounts",
        "client" | "clients" => "clients",
        "listener" | "listeners" => "listeners",
        "route" | "routes" => "routes",
        "general" => "general",
        other => return Err(format!("{other:?}: not a kind\n{USAGE}")),
    };
    let named = matches!(kind, "accounts" | "clients" | "listeners");
    if let (true, Some(name)) = (named, rest.first()) {
        // Names go into the path as they are: what a path would read otherwise is refused.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '%'))
        {
            return Err(format!("{name:?}: not a name this command can send"));
        }
    }
    let call = |method: &str, path: &str, extra: &[(&str, String)], body: &[u8]| {
        let mut headers = auth.to_vec();
        headers.extend_from_slice(extra);
        request_with(addr, method, path, &headers, body)
    };
    match verb.as_str() {
        "get" => {
            let path = match (named, rest.first()) {
                (true, Some(name)) => format!("/config/{kind}/{name}"),
                _ => format!("/config/{kind}"),
            };
            let a = ok(call("GET", &path, &[], b"")?)?;
            if json || kind == "routes" {
                print!("{}", a.body);
            } else {
                print!("{}", readable(&a.body));
            }
            Ok(())
        }
        "set" if kind == "routes" => {
            let file = rest
                .first()
                .ok_or("set routes needs the route file to install")?;
            let text = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let current = ok(call("GET", "/config/routes", &[], b"")?)?;
            let a = call("PUT", "/config/routes", &if_match(&current), &text)?;
            report(a, json)
        }
        "set" => {
            let (path, pairs) = if named {
                let (name, pairs) = rest.split_first().ok_or("set needs a NAME")?;
                (format!("/config/{kind}/{name}"), pairs)
            } else {
                (format!("/config/{kind}"), rest)
            };
            if pairs.is_empty() {
                return Err("set needs key=value (key= removes a key)".into());
            }
            let current = call("GET", &path, &[], b"")?;
            let creating = current.code == 404;
            let mut obj = match current.code {
                200 => match serde_json::from_str::<Value>(&current.body) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err(format!("{path}: the answer is not a JSON object")),
                },
                404 if named => serde_json::Map::new(),
                _ => return Err(failed(&current)),
            };
            obj.remove("system_id");
            obj.remove("name");
            for p in pairs {
                let (k, v) = p
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("{p:?}: expected key=value"))?;
                match (v.is_empty(), named) {
                    (true, true) => {
                        obj.remove(k);
                    }
                    (true, false) => {
                        obj.insert(k.into(), Value::Null);
                    }
                    (false, _) => {
                        obj.insert(k.into(), Value::String(v.into()));
                    }
                }
            }
            if !named {
                // The general resource merges: send only what changes.
                let given: Vec<&str> = pairs
                    .iter()
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, _)| k)
                    .collect();
                obj.retain(|k, _| given.contains(&k.as_str()));
            }
            let body = Value::Object(obj).to_string();
            let mut extra = if_match(&current);
            if creating {
                // Created here, unless someone else created it meanwhile.
                extra.push(("If-None-Match", "*".into()));
            }
            extra.push(("Content-Type", "application/json".into()));
            report(call("PUT", &path, &extra, body.as_bytes())?, json)
        }
        "delete" if named => {
            let name = rest.first().ok_or("delete needs a NAME")?;
            report(
                call("DELETE", &format!("/config/{kind}/{name}"), &[], b"")?,
                json,
            )
        }
        "delete" => Err(format!("{kind} cannot be deleted\n{USAGE}")),
        other => Err(format!("{other:?}: not get, set or delete\n{USAGE}")),
    }
}

fn if_match(a: &Answer) -> Vec<(&'static str, String)> {
    a.etag.iter().map(|e| ("If-Match", e.clone())).collect()
}

fn ok(a: Answer) -> Result<Answer, String> {
    if a.code == 200 {
        Ok(a)
    } else {
        Err(failed(&a))
    }
}

fn failed(a: &Answer) -> String {
    let why = serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|v| {
            let list = v.get("errors")?.as_array()?.clone();
            Some(
                list.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect::<Vec<_>>()
                    .join("\n  "),
            )
        })
        .filter(|s| !s.is_empty())
        .or_else(|| {
            serde_json::from_str::<Value>(&a.body)
                .ok()?
                .get("error")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| a.body.trim().to_string());
    format!("the admin endpoint answered {}:\n  {why}", a.code)
}

/// What a write did, for people (or as it came, with `--json`).
fn report(a: Answer, json: bool) -> Result<(), String> {
    if !(200..300).contains(&a.code) {
        return Err(failed(&a));
    }
    if json {
        print!("{}", a.body);
        return Ok(());
    }
    let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    println!(
        "installed: configuration version {}",
        v.get("version").and_then(Value::as_u64).unwrap_or(0)
    );
    for (key, label) in [("changes", "  "), ("restart_needed", "  needs a restart: ")] {
        for c in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            println!("{label}{}", c.as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// A resource, or a list of them, as `key=value` lines.
fn readable(body: &str) -> String {
    let mut out = String::new();
    let one = |m: &serde_json::Map<String, Value>, out: &mut String| {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("{k}={v}\n"));
        }
    };
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => one(&m, &mut out),
        Ok(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                if let Value::Object(m) = item {
                    one(m, &mut out);
                }
            }
        }
        _ => out.push_str(body),
    }
    out
}

/// Basic auth's value for `user` and `password`.
pub fn basic(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut s = String::from("Basic ");
    for c in raw.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        assert_eq!(
            super::basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(super::basic("a", "b"), "Basic YTpi");
        assert_eq!(super::basic("ab", "c"), "Basic YWI6Yw==");
    }
}
