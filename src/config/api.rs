//! The configuration API's resources over the files' texts (pure: the caller reads and
//! writes the files, checks versions and installs).
//!
//! | resource | file | section |
//! |---|---|---|
//! | `accounts/{system_id}` | regfile.conf | `[SYSTEM_ID]` |
//! | `clients/{name}` | ysmpp.conf | `[NAME]`, listed in `[smpp-client] clients=` |
//! | `listeners/{name}` | ysmpp.conf | `[listenerserver NAME]` |
//! | `general` | yatesmsc.conf and ysmpp.conf | `[general]` (see [`YSMPP_GENERAL`]) |
//!
//! A resource is shown as a JSON object of its keys, as the file writes them, with secrets
//! as `"***"`. A PUT replaces the resource's keys (a secret given as `"***"` keeps its value);
//! the general resource is merged instead (`null` removes a key). Every write is checked as
//! the loader reads the files: an unknown key is refused here, anything else by the loader.

use serde_json::{Map, Value};

use super::edit;
use super::ini::Ini;
use super::ConfigFiles;

/// What a secret shows as, and, written back, means "keep the current value".
pub const HIDDEN: &str = "***";

/// The keys of ysmpp.conf `[general]` the general resource carries (those a reload
/// applies); every other key it carries belongs to yatesmsc.conf `[general]`.
pub const YSMPP_GENERAL: [&str; 3] = ["log_level", "default_route", "delivery_retry"];

/// Sections of ysmpp.conf that are not client links.
const RESERVED: [&str; 7] = [
    "general",
    "smpp-server",
    "smpp-client",
    "cdr",
    "http",
    "http-target",
    "admin",
];

/// A kind of named resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Account,
    Client,
    Listener,
}

/// The texts of the files, as read (`None`: the file does not exist).
#[derive(Clone, Debug, Default)]
pub struct Texts {
    pub ysmpp: Option<String>,
    pub regfile: Option<String>,
    pub openssl: Option<String>,
    pub yatesmsc: Option<String>,
}

impl Texts {
    fn get(&self, file: &str) -> &str {
        match file {
            "ysmpp.conf" => self.ysmpp.as_deref(),
            "regfile.conf" => self.regfile.as_deref(),
            "openssl.conf" => self.openssl.as_deref(),
            _ => self.yatesmsc.as_deref(),
        }
        .unwrap_or("")
    }

    /// The texts with `changes` in place of their files.
    fn with(&self, changes: &[(&'static str, String)]) -> Texts {
        let mut t = self.clone();
        for (file, text) in changes {
            let slot = match *file {
                "ysmpp.conf" => &mut t.ysmpp,
                "regfile.conf" => &mut t.regfile,
                "openssl.conf" => &mut t.openssl,
                _ => &mut t.yatesmsc,
            };
            *slot = Some(text.clone());
        }
        t
    }
}

/// Why a request changes nothing: (HTTP status, reasons).
pub type Refusal = (u16, Vec<String>);

/// The new texts of the files a write changes (file name, text).
pub type Changes = Vec<(&'static str, String)>;

fn refuse(status: u16, why: impl Into<String>) -> Refusal {
    (status, vec![why.into()])
}

impl Kind {
    /// The kind a path segment names (`accounts`, `clients`, `listeners`).
    pub fn from_path(s: &str) -> Option<Kind> {
        match s {
            "accounts" => Some(Kind::Account),
            "clients" => Some(Kind::Client),
            "listeners" => Some(Kind::Listener),
            _ => None,
        }
    }

    pub fn file(self) -> &'static str {
        match self {
            Kind::Account => "regfile.conf",
            Kind::Client | Kind::Listener => "ysmpp.conf",
        }
    }

    /// The key a resource's name is shown under.
    fn name_key(self) -> &'static str {
        match self {
            Kind::Account => "system_id",
            Kind::Client | Kind::Listener => "name",
        }
    }

    fn section(self, name: &str) -> String {
        match self {
            Kind::Listener => format!("listenerserver {name}"),
            Kind::Account | Kind::Client => name.to_string(),
        }
    }

    fn is_secret(self, key: &str) -> bool {
        match self {
            Kind::Account => key == "password",
            Kind::Client => key == "system_password",
            Kind::Listener => false,
        }
    }
}

/// The names of the resources of `kind`, in file order.
pub fn names(kind: Kind, texts: &Texts) -> Vec<String> {
    let ini = Ini::parse(texts.get(kind.file()));
    let mut out: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !n.is_empty() && !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    };
    match kind {
        Kind::Account => ini.sections.iter().for_each(|s| add(&s.name)),
        Kind::Client => client_list(&ini).iter().for_each(|n| add(n)),
        Kind::Listener => ini
            .sections
            .iter()
            .filter_map(|s| listener_name(&s.name))
            .for_each(|n| add(&n)),
    }
    out
}

fn client_list(ini: &Ini) -> Vec<String> {
    ini.sections_named("smpp-client")
        .filter_map(|s| s.get("clients")?.value.clone())
        .flat_map(|v| super::value::list(&v))
        .collect()
}

fn listener_name(section: &str) -> Option<String> {
    let mut words = section.split_whitespace();
    (words.next()? == "listenerserver").then(|| words.collect::<Vec<_>>().join(" "))
}

/// One resource as JSON (its name first, secrets hidden); `None` when there is none.
pub fn show(kind: Kind, texts: &Texts, name: &str) -> Option<Value> {
    if !names(kind, texts).iter().any(|n| n == name) {
        return None;
    }
    let ini = Ini::parse(texts.get(kind.file()));
    let mut m = Map::new();
    m.insert(kind.name_key().into(), Value::String(name.into()));
    let section = normalise(&kind.section(name));
    for s in ini
        .sections
        .iter()
        .filter(|s| normalise(&s.name) == section)
    {
        for e in &s.entries {
            let v = e.value.clone().unwrap_or_default();
            let v = if kind.is_secret(&e.key) && !v.is_empty() {
                HIDDEN.to_string()
            } else {
                v
            };
            m.insert(e.key.clone(), Value::String(v));
        }
    }
    Some(Value::Object(m))
}

/// Every resource of `kind`, as a JSON array.
pub fn list(kind: Kind, texts: &Texts) -> Value {
    Value::Array(
        names(kind, texts)
            .iter()
            .filter_map(|n| show(kind, texts, n))
            .collect(),
    )
}

fn normalise(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A request body as keys and values: a JSON object whose values are strings, numbers,
/// booleans (yes/no) or lists of those (comma-separated), or (with `nulls`) null for
/// "remove this key".
pub fn keys_from_json(body: &[u8], nulls: bool) -> Result<Vec<(String, Option<String>)>, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| refuse(400, format!("the body is not JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(refuse(400, "the body must be a JSON object of keys"));
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in m {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            errors.push(format!("{k:?}: not a key name"));
            continue;
        }
        let scalar = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
                _ => None,
            }
        };
        let text = match &v {
            Value::Null if nulls => {
                out.push((k, None));
                continue;
            }
            Value::Array(items) => items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .map(|l| l.join(",")),
            other => scalar(other),
        };
        match text {
            None => errors.push(format!(
                "{k}: must be a string, a number, true/false or a list of those{}",
                if nulls { " (null removes it)" } else { "" }
            )),
            Some(t) if t.contains(['\n', '\r']) => {
                errors.push(format!("{k}: a value cannot hold a line break"))
            }
            Some(t) if t.trim_end().ends_with('\\') => errors.push(format!(
                "{k}: a value cannot end with a backslash (the files read it as a continued line)"
            )),
            Some(t) => out.push((k, Some(t.trim().to_string()))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err((400, errors))
    }
}

/// Whether `name` can name a resource of `kind`.
fn check_name(kind: Kind, name: &str) -> Result<(), Refusal> {
    let bad = name.is_empty()
        || name.len() > 64
        || name.contains([']', '[', '/', ';', '=', '\\', ',', '%', '?', '#'])
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
        || name.starts_with('.');
    if bad {
        return Err(refuse(
            400,
            format!("{name:?}: a name is 1-64 characters without spaces, brackets or any of / ; = \\ , % ? #"),
        ));
    }
    if kind == Kind::Client && (RESERVED.contains(&name) || name.starts_with("listenerserver")) {
        return Err(refuse(
            400,
            format!("{name:?}: a section of ysmpp.conf has that name"),
        ));
    }
    Ok(())
}

/// PUT of a named resource: the files to write.
pub fn put(
    kind: Kind,
    texts: &Texts,
    name: &str,
    keys: &[(String, Option<String>)],
) -> Result<Vec<(&'static str, String)>, Refusal> {
    check_name(kind, name)?;
    let current = show(kind, texts, name);
    let ini = Ini::parse(texts.get(kind.file()));
    let section = kind.section(name);
    let mut set: Vec<(String, String)> = Vec::new();
    for (k, v) in keys {
        let Some(v) = v else { continue };
        if k == kind.name_key() {
            // What a GET shows, written back: the name is the path's.
            if v != name {
                return Err(refuse(
                    400,
                    format!("{k}: {v:?} is not {name:?}; a resource is renamed by deleting it and adding another"),
                ));
            }
            continue;
        }
        if kind.is_secret(k) && v == HIDDEN {
            // The current value stays (what a GET showed, written back).
            let old = ini
                .sections
                .iter()
                .filter(|s| normalise(&s.name) == normalise(&section))
                .find_map(|s| s.get(k)?.value.clone());
            match old {
                // Kept as the file has it, if it can be written back as it reads.
                Some(old) if old.contains(['\n', '\r']) || old.trim_end().ends_with('\\') => {
                    return Err(refuse(
                        400,
                        format!("{k}: the current value spans lines in the file and cannot be kept as it is; send the value itself"),
                    ))
                }
                Some(old) => set.push((k.clone(), old)),
                None => {
                    return Err(refuse(
                        400,
                        format!("{k}: \"{HIDDEN}\" keeps the current value, and there is none"),
                    ))
                }
            }
        } else {
            set.push((k.clone(), v.clone()));
        }
    }
    let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut text = edit::put_section(texts.get(kind.file()), &section, &pairs);
    if kind == Kind::Client && current.is_none() {
        let mut list = client_list(&Ini::parse(&text));
        list.push(name.to_string());
        text = edit::merge_keys(&text, "smpp-client", &[("clients", Some(&list.join(",")))]);
    }
    let changes = vec![(kind.file(), text)];
    unknown_keys(texts, &changes, kind.file(), &section, &set)?;
    Ok(changes)
}

/// DELETE of a named resource: the files to write (404 when there is none).
pub fn delete(
    kind: Kind,
    texts: &Texts,
    name: &str,
) -> Result<Vec<(&'static str, String)>, Refusal> {
    if show(kind, texts, name).is_none() {
        return Err(refuse(404, format!("no {} {name:?}", kind_word(kind))));
    }
    let mut text = edit::delete_section(texts.get(kind.file()), &kind.section(name));
    if kind == Kind::Client {
        let list: Vec<String> = client_list(&Ini::parse(&text))
            .into_iter()
            .filter(|n| n != name)
            .collect();
        text = edit::merge_keys(&text, "smpp-client", &[("clients", Some(&list.join(",")))]);
    }
    Ok(vec![(kind.file(), text)])
}

/// The word for a kind in messages.
pub fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Account => "account",
        Kind::Client => "client link",
        Kind::Listener => "listener",
    }
}

/// The general resource: yatesmsc.conf `[general]` and the [`YSMPP_GENERAL`] keys of
/// ysmpp.conf `[general]`, as one object.
pub fn show_general(texts: &Texts) -> Value {
    let mut m = Map::new();
    let ysmpp = Ini::parse(texts.get("ysmpp.conf"));
    for s in ysmpp.sections_named("general") {
        for e in s
            .entries
            .iter()
            .filter(|e| YSMPP_GENERAL.contains(&e.key.as_str()))
        {
            m.insert(
                e.key.clone(),
                Value::String(e.value.clone().unwrap_or_default()),
            );
        }
    }
    let yatesmsc = Ini::parse(texts.get("yatesmsc.conf"));
    for s in yatesmsc.sections_named("general") {
        for e in &s.entries {
            m.insert(
                e.key.clone(),
                Value::String(e.value.clone().unwrap_or_default()),
            );
        }
    }
    Value::Object(m)
}

/// PUT of the general resource: the listed keys set (or, null, removed); the others stay.
pub fn put_general(
    texts: &Texts,
    keys: &[(String, Option<String>)],
) -> Result<Vec<(&'static str, String)>, Refusal> {
    let (ysmpp, yatesmsc): (Vec<_>, Vec<_>) = keys
        .iter()
        .partition(|(k, _)| YSMPP_GENERAL.contains(&k.as_str()));
    let mut changes = Vec::new();
    for (file, keys) in [("ysmpp.conf", ysmpp), ("yatesmsc.conf", yatesmsc)] {
        if keys.is_empty() {
            continue;
        }
        let set: Vec<(&str, Option<&str>)> = keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        changes.push((file, edit::merge_keys(texts.get(file), "general", &set)));
    }
    let set: Vec<(String, String)> = keys
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    unknown_keys(texts, &changes, "yatesmsc.conf", "general", &set)?;
    Ok(changes)
}

/// Refuses keys the loader does not know (it only warns about them when they come from a
/// file edited by hand).
fn unknown_keys(
    texts: &Texts,
    changes: &[(&'static str, String)],
    file: &str,
    section: &str,
    set: &[(String, String)],
) -> Result<(), Refusal> {
    let t = texts.with(changes);
    let parsed = super::Config::parse(&ConfigFiles {
        ysmpp: t.ysmpp.as_deref(),
        regfile: t.regfile.as_deref(),
        openssl: t.openssl.as_deref(),
        yatesmsc: t.yatesmsc.as_deref(),
    });
    let Ok(config) = parsed else {
        // The loader's errors are reported when the write is validated.
        return Ok(());
    };
    let section = normalise(section);
    let unknown: Vec<String> = config
        .warnings
        .iter()
        .filter(|w| {
            w.file == file
                && w.message.starts_with("unknown key")
                && set.iter().any(|(k, _)| *k == w.key)
                && w.message.contains(&format!("[{section}]"))
        })
        .map(|w| format!("{}: unknown key in [{section}] of {file}", w.key))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err((400, unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Texts {
        Texts {
            ysmpp: Some(
                "[general]\n; the log\nlog_level=info\n\n[listenerserver plain]\naddr=127.0.0.1\nport=2775\n\n[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport=2776\nsystem_id=gw\nsystem_password=pw\n".into(),
            ),
            regfile: Some("; accounts\n[demo]\npassword=demo\nwindow=10\n".into()),
            openssl: None,
            yatesmsc: None,
        }
    }

    #[test]
    fn resources_show_their_keys_with_secrets_hidden() {
        let t = texts();
        assert_eq!(names(Kind::Account, &t), vec!["demo"]);
        assert_eq!(names(Kind::Client, &t), vec!["up"]);
        assert_eq!(names(Kind::Listener, &t), vec!["plain"]);
        let a = show(Kind::Account, &t, "demo").unwrap();
        assert_eq!(a["password"], "***");
        assert_eq!(a["window"], "10");
        assert_eq!(a["system_id"], "demo");
        assert_eq!(
            show(Kind::Client, &t, "up").unwrap()["system_password"],
            "***"
        );
        assert!(show(Kind::Account, &t, "nobody").is_none());
    }

    #[test]
    fn a_put_account_keeps_a_hidden_password_and_the_comments() {
        let t = texts();
        let keys = keys_from_json(
            br#"{"password":"***","window":20,"allowed_ips":["10.0.0.0/8","127.0.0.1"]}"#,
            false,
        )
        .unwrap();
        let out = put(Kind::Account, &t, "demo", &keys).unwrap();
        assert_eq!(out.len(), 1);
        let text = &out[0].1;
        assert!(text.starts_with("; accounts\n[demo]\n"), "{text}");
        assert!(text.contains("password=demo\n"), "{text}");
        assert!(text.contains("window=20\n"), "{text}");
        assert!(
            text.contains("allowed_ips=10.0.0.0/8,127.0.0.1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_new_client_is_listed_and_a_deleted_one_unlisted() {
        let t = texts();
        let keys = keys_from_json(
            br#"{"server":"127.0.0.1","port":2777,"system_id":"b","system_password":"x"}"#,
            false,
        )
        .unwrap();
        let out = put(Kind::Client, &t, "b", &keys).unwrap();
        let t2 = Texts {
            ysmpp: Some(out[0].1.clone()),
            ..t.clone()
        };
        assert_eq!(names(Kind::Client, &t2), vec!["up", "b"]);
        let out = delete(Kind::Client, &t2, "up").unwrap();
        let t3 = Texts {
            ysmpp: Some(out[0].1.clone()),
            ..t2
        };
        assert_eq!(names(Kind::Client, &t3), vec!["b"]);
        assert!(!out[0].1.contains("[up]"));
    }

    #[test]
    fn unknown_keys_bad_values_and_bad_names_are_refused() {
        let t = texts();
        let keys = keys_from_json(br#"{"password":"x","colour":"blue"}"#, false).unwrap();
        let (status, why) = put(Kind::Account, &t, "demo", &keys).unwrap_err();
        assert_eq!(status, 400);
        assert!(why[0].contains("colour"), "{why:?}");
        assert_eq!(keys_from_json(b"{not json", false).unwrap_err().0, 400);
        assert_eq!(keys_from_json(b"[1]", false).unwrap_err().0, 400);
        assert_eq!(
            keys_from_json(br#"{"a":"x\ny"}"#, false).unwrap_err().0,
            400
        );
        assert_eq!(keys_from_json(br#"{"a":null}"#, false).unwrap_err().0, 400);
        assert!(keys_from_json(br#"{"a":null}"#, true).is_ok());
        let none: Vec<(String, Option<String>)> = Vec::new();
        assert_eq!(put(Kind::Client, &t, "general", &none).unwrap_err().0, 400);
        assert_eq!(put(Kind::Account, &t, "a b", &none).unwrap_err().0, 400);
        assert_eq!(delete(Kind::Account, &t, "nobody").unwrap_err().0, 404);
        // A name the loader would read as a listener, or that splits a list, is refused.
        assert_eq!(
            put(Kind::Client, &t, "listenerserverX", &none)
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(put(Kind::Account, &t, "a,b", &none).unwrap_err().0, 400);
        // A kept secret that spans lines in the file cannot be kept as it is.
        let spans = Texts {
            regfile: Some("[demo]\npassword=a\\\nb\\ \n; c\n".into()),
            ..t.clone()
        };
        let keep = keys_from_json(br#"{"password":"***"}"#, false).unwrap();
        assert_eq!(
            put(Kind::Account, &spans, "demo", &keep).unwrap_err().0,
            400
        );
    }

    #[test]
    fn the_general_resource_spans_two_files() {
        let t = texts();
        let keys = keys_from_json(
            br#"{"backup_smpp_gw":"smppclient/up","smppgw_trusted":true,"log_level":"debug"}"#,
            true,
        )
        .unwrap();
        let out = put_general(&t, &keys).unwrap();
        let files: Vec<&str> = out.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, vec!["ysmpp.conf", "yatesmsc.conf"]);
        assert!(
            out[0].1.contains("; the log\nlog_level=debug\n"),
            "{}",
            out[0].1
        );
        assert!(out[1].1.contains("backup_smpp_gw=smppclient/up\n"));
        let t2 = t.with(&out);
        let g = show_general(&t2);
        assert_eq!(g["smppgw_trusted"], "yes");
        assert_eq!(g["log_level"], "debug");
    }
}
