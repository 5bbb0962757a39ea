//! The two forms of an HTTP submit, checked field by field, and the SMPP messages they make.
//!
//! - `POST /messages` with a JSON object: `from`, `to` (a number or a list), `text`, or `hex`
//!   with `data_coding` (and `udh` in hex), `registered_delivery` (true/false or 0-3),
//!   `validity` and `deferred` in seconds. Unknown fields are refused: a typo must not send a
//!   message without what its sender meant.
//! - Kannel's `GET|POST /cgi-bin/sendsms`: `username`/`user`, `password`/`pass`, `from`,
//!   `to` (several separated by spaces), `text`, `coding` (0 GSM 7-bit, 1 8-bit data,
//!   2 UCS2), `charset` of `text`, `udh`, `dlr-mask`, `validity` and `deferred` in minutes.
//!   Kannel's other parameters (`smsc`, `priority`, ...) are accepted and ignored, as an
//!   application written for Kannel sends them whether they matter or not.
//!
//! A text is sent in the smallest coding that holds it (GSM 7-bit in the account's form of
//! data_coding 0, else UCS2) and cut into concatenated parts (8-bit UDH reference) when it
//! is long, exactly as an ESME would submit it; octets (`hex`, Kannel's coding 1) go as they
//! are, in message_payload when they pass one SMS.

use bytes::Bytes;

use crate::smpp::{tlv, Address, Body, COctet, Pdu, SubmitSm, Tlvs};
use crate::text::{segment, Charset, Concatenation, SegmentOptions};

/// Recipients one request may name.
pub const MAX_RECIPIENTS: usize = 100;

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Text; `charset` forces a coding (else the smallest that holds it).
    Text {
        text: String,
        charset: Option<Charset>,
    },
    /// Octets sent as they are, with this data_coding.
    Octets { data_coding: u8, data: Vec<u8> },
}

/// A submit, as either form gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitRequest {
    pub from: String,
    pub to: Vec<String>,
    pub content: Content,
    /// A user data header given by the client (octets; sent with UDHI set).
    pub udh: Vec<u8>,
    pub registered_delivery: u8,
    pub validity_s: Option<u64>,
    pub deferred_s: Option<u64>,
    /// Where status reports go: a URL they are POSTed to as JSON, or `GET ` and a Kannel
    /// dlr-url template; empty: the route rules, else the account's receiver binds.
    pub report_to: String,
}

/// What is wrong with a request, field by field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    /// The first reason for a field is the one reported.
    fn add(&mut self, field: &str, why: impl Into<String>) {
        if !self.0.iter().any(|(f, _)| f == field) {
            self.0.push((field.to_string(), why.into()));
        }
    }

    /// `{"error":"...","fields":{"to":"..."}}`.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"error\":\"invalid request\",\"fields\":{");
        for (i, (f, why)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&super::json_str(f));
            out.push(':');
            out.push_str(&super::json_str(why));
        }
        out.push_str("}}\n");
        out
    }

    /// One line: `field: why; field: why`.
    pub fn line(&self) -> String {
        self.0
            .iter()
            .map(|(f, w)| format!("{f}: {w}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A number as the API takes it: digits with an optional `+` (international), or for a
/// sender an alphanumeric name of up to 11 characters.
pub fn address(s: &str, sender: bool) -> Result<Address, String> {
    let s = s.trim();
    if let Some(d) = s.strip_prefix('+') {
        if !d.is_empty() && d.len() <= 20 && d.bytes().all(|c| c.is_ascii_digit()) {
            return Ok(Address::new(1, 1, COctet::from(d)));
        }
        return Err(format!(
            "{s:?} is not an international number (+ and 1-20 digits)"
        ));
    }
    if !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()) {
        return Ok(Address::new(0, 1, COctet::from(s)));
    }
    if sender && !s.is_empty() && s.chars().count() <= 11 && s.is_ascii() && !s.contains('\0') {
        return Ok(Address::new(5, 0, COctet::from(s)));
    }
    if sender {
        Err(format!(
            "{s:?} is neither a number (1-20 digits, + for international) nor a name of 1-11 ASCII characters"
        ))
    } else {
        Err(format!(
            "{s:?} is not a number (1-20 digits, + for international)"
        ))
    }
}

fn hex_octets(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return Err("an odd number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(s.get(i..i + 2).unwrap_or("x"), 16)
                .map_err(|_| format!("{:?} is not hex", s.get(i..i + 2).unwrap_or("")))
        })
        .collect()
}

/// `POST /messages`.
pub fn from_json(body: &[u8]) -> Result<SubmitRequest, FieldErrors> {
    let mut errs = FieldErrors::default();
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            errs.add("body", format!("not JSON: {e}"));
            return Err(errs);
        }
    };
    let Some(obj) = value.as_object() else {
        errs.add("body", "not a JSON object");
        return Err(errs);
    };
    const KNOWN: &[&str] = &[
        "from",
        "to",
        "text",
        "hex",
        "data_coding",
        "udh",
        "registered_delivery",
        "validity",
        "deferred",
        "callback_url",
    ];
    for k in obj.keys() {
        if !KNOWN.contains(&k.as_str()) {
            errs.add(k, format!("unknown field (known: {})", KNOWN.join(", ")));
        }
    }
    let string = |errs: &mut FieldErrors, k: &str| -> Option<String> {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errs.add(k, "must be a string");
                None
            }
        }
    };
    let from = string(&mut errs, "from").unwrap_or_default();
    let to: Vec<String> = match obj.get("to") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => {
            let mut v = Vec::new();
            for x in a {
                match x.as_str() {
                    Some(s) => v.push(s.to_string()),
                    None => {
                        errs.add("to", "a list of strings");
                        break;
                    }
                }
            }
            v
        }
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(_) => {
            errs.add("to", "a number as a string, or a list of them");
            Vec::new()
        }
    };
    let number = |errs: &mut FieldErrors, k: &str, max: u64| -> Option<u64> {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Some(n),
                _ => {
                    errs.add(k, format!("a whole number from 0 to {max}"));
                    None
                }
            },
        }
    };
    let data_coding = number(&mut errs, "data_coding", 255).map(|n| n as u8);
    let text = string(&mut errs, "text");
    let hex = string(&mut errs, "hex");
    let udh = match string(&mut errs, "udh").map(|u| hex_octets(&u)) {
        Some(Ok(u)) => u,
        Some(Err(e)) => {
            errs.add("udh", e);
            Vec::new()
        }
        None => Vec::new(),
    };
    let content = match (text, hex) {
        (Some(_), Some(_)) => {
            errs.add("text", "give text or hex, not both");
            None
        }
        (Some(text), None) => {
            let charset = match data_coding {
                None => None,
                Some(0) => Some(Charset::Gsm7),
                Some(1) => Some(Charset::Ascii),
                Some(3) => Some(Charset::Latin1),
                Some(8) => Some(Charset::Ucs2),
                Some(dc) => {
                    errs.add(
                        "data_coding",
                        format!("{dc} with text (0, 1, 3 or 8; octets go in hex)"),
                    );
                    None
                }
            };
            Some(Content::Text { text, charset })
        }
        (None, Some(h)) => match hex_octets(&h) {
            Ok(data) => Some(Content::Octets {
                data_coding: data_coding.unwrap_or(4),
                data,
            }),
            Err(e) => {
                errs.add("hex", e);
                None
            }
        },
        (None, None) => {
            errs.add("text", "missing (give text, or hex with data_coding)");
            None
        }
    };
    let registered_delivery = match obj.get("registered_delivery") {
        None | Some(serde_json::Value::Null) => 0,
        Some(serde_json::Value::Bool(b)) => u8::from(*b),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 3 => n as u8,
            _ => {
                errs.add(
                    "registered_delivery",
                    "true, false, or 0-3 (SMPP: 1 any final, 2 failure, 3 success)",
                );
                0
            }
        },
    };
    let validity_s = number(&mut errs, "validity", 99 * 86_400);
    let deferred_s = number(&mut errs, "deferred", 99 * 86_400);
    let mut report_to = String::new();
    if let Some(u) = string(&mut errs, "callback_url") {
        match super::target::Url::parse(&u) {
            Ok(_) => report_to = u,
            Err(e) => errs.add("callback_url", e),
        }
    }
    let mut req = finish(
        errs,
        from,
        to,
        content,
        udh,
        registered_delivery,
        validity_s,
        deferred_s,
    )?;
    // A callback without registered_delivery: it wants every final report.
    if !report_to.is_empty() && obj.get("registered_delivery").is_none() {
        req.registered_delivery = 1;
    }
    req.report_to = report_to;
    Ok(req)
}

/// Kannel's sendsms parameters; also the credentials they carry.
#[allow(clippy::type_complexity)]
pub fn from_kannel(
    params: &[(String, Vec<u8>)],
) -> Result<(SubmitRequest, Option<(String, String)>), FieldErrors> {
    let mut errs = FieldErrors::default();
    let get = |names: &[&str]| -> Option<&Vec<u8>> {
        params
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v)
    };
    let text_of = |v: &Vec<u8>| String::from_utf8_lossy(v).into_owned();
    let user = get(&["username", "user"]).map(text_of);
    let pass = get(&["password", "pass"]).map(text_of);
    let credentials = user.map(|u| (u, pass.unwrap_or_default()));
    let from = get(&["from"]).map(text_of).unwrap_or_default();
    // Several receivers: Kannel separates them with spaces (`+` in a query is a space).
    let to: Vec<String> = params
        .iter()
        .filter(|(n, _)| n == "to")
        .flat_map(|(_, v)| {
            text_of(v)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let small = |errs: &mut FieldErrors, name: &str, max: u64| -> Option<u64> {
        let v = get(&[name])?;
        match std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            Some(n) if n <= max => Some(n),
            _ => {
                errs.add(name, format!("a whole number from 0 to {max}"));
                None
            }
        }
    };
    let coding = small(&mut errs, "coding", 2);
    let charset = get(&["charset"]).map(|c| text_of(c).to_ascii_uppercase());
    let raw = get(&["text"]).cloned();
    let udh = get(&["udh"]).cloned().unwrap_or_default();
    let decode_text = |errs: &mut FieldErrors, raw: &[u8], default: &str| -> Option<String> {
        let cs = charset.as_deref().unwrap_or(default);
        match cs {
            "UTF-8" | "UTF8" => match std::str::from_utf8(raw) {
                Ok(s) => Some(s.to_string()),
                Err(_) => {
                    errs.add("text", "not UTF-8 (say charset= if it is in another)");
                    None
                }
            },
            "ISO-8859-1" | "LATIN1" | "ISO8859-1" | "WINDOWS-1252" | "CP1252" => {
                Some(raw.iter().map(|&b| b as char).collect())
            }
            "UTF-16BE" | "UCS-2" | "UCS2" | "UTF-16" => {
                if raw.len() % 2 != 0 {
                    errs.add("text", "UTF-16 text of an odd number of octets");
                    return None;
                }
                let units = raw.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
                match char::decode_utf16(units).collect::<Result<String, _>>() {
                    Ok(s) => Some(s),
                    Err(_) => {
                        errs.add("text", "UTF-16 text with a lone surrogate");
                        None
                    }
                }
            }
            other => {
                errs.add(
                    "charset",
                    format!("{other:?} (UTF-8, ISO-8859-1 or UTF-16BE)"),
                );
                None
            }
        }
    };
    let content = match raw {
        None => {
            errs.add("text", "missing");
            None
        }
        Some(raw) => match coding {
            Some(1) => Some(Content::Octets {
                data_coding: 4,
                data: raw,
            }),
            Some(2) => decode_text(&mut errs, &raw, "UTF-16BE").map(|text| Content::Text {
                text,
                charset: Some(Charset::Ucs2),
            }),
            Some(0) => decode_text(&mut errs, &raw, "UTF-8").map(|text| Content::Text {
                text,
                charset: Some(Charset::Gsm7),
            }),
            _ => decode_text(&mut errs, &raw, "UTF-8").map(|text| Content::Text {
                text,
                charset: None,
            }),
        },
    };
    // dlr-mask: 1 delivered, 2 undeliverable (4, 8, 16: intermediate states, which SMPP
    // receipts do not carry).
    let registered_delivery = match small(&mut errs, "dlr-mask", 31).map(|m| m & 3) {
        Some(3) => 1,
        Some(2) => 2,
        Some(1) => 3,
        _ => 0,
    };
    let mut report_to = String::new();
    if let Some(u) = get(&["dlr-url"]).filter(|u| !u.is_empty()) {
        let u = text_of(u);
        match super::target::Url::parse(&u) {
            Ok(_) if registered_delivery != 0 => report_to = format!("GET {u}"),
            // Kannel calls dlr-url only for the states dlr-mask names.
            Ok(_) => errs.add("dlr-mask", "dlr-url is given; say which reports (1, 2, 3)"),
            Err(e) => errs.add("dlr-url", e),
        }
    }
    let validity_s = small(&mut errs, "validity", 99 * 1440).map(|m| m * 60);
    let deferred_s = small(&mut errs, "deferred", 99 * 1440).map(|m| m * 60);
    let mut req = finish(
        errs,
        from,
        to,
        content,
        udh,
        registered_delivery,
        validity_s,
        deferred_s,
    )?;
    req.report_to = report_to;
    Ok((req, credentials))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    mut errs: FieldErrors,
    from: String,
    to: Vec<String>,
    content: Option<Content>,
    udh: Vec<u8>,
    registered_delivery: u8,
    validity_s: Option<u64>,
    deferred_s: Option<u64>,
) -> Result<SubmitRequest, FieldErrors> {
    if !from.is_empty() {
        if let Err(e) = address(&from, true) {
            errs.add("from", e);
        }
    }
    if to.is_empty() {
        errs.add("to", "missing");
    } else if to.len() > MAX_RECIPIENTS {
        errs.add(
            "to",
            format!("{} recipients, over the {MAX_RECIPIENTS} allowed", to.len()),
        );
    }
    for t in &to {
        if let Err(e) = address(t, false) {
            errs.add("to", e);
            break;
        }
    }
    if !udh.is_empty() && (udh[0] as usize + 1 != udh.len()) {
        errs.add(
            "udh",
            format!(
                "its first octet (UDHL {}) does not match its {} octets",
                udh[0],
                udh.len()
            ),
        );
    }
    match (content, errs.0.is_empty()) {
        (Some(content), true) => Ok(SubmitRequest {
            from,
            to,
            content,
            udh,
            registered_delivery,
            validity_s,
            deferred_s,
            report_to: String::new(),
        }),
        _ => Err(errs),
    }
}

/// SMPP relative time (`000DDhhmmss000R`) for `secs` from now (at most 99 days).
pub fn relative_time(secs: u64) -> String {
    let secs = secs.min(99 * 86_400 + 86_399);
    let (d, rest) = (secs / 86_400, secs % 86_400);
    format!(
        "0000{d:02}{:02}{:02}{:02}000R",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The submit_sm PDUs of one recipient: one, or the parts of a long text. `zero` is what
/// data_coding 0 means for the account; `reference` ties the parts together.
pub fn messages(
    req: &SubmitRequest,
    dest: &Address,
    zero: Charset,
    reference: u16,
) -> Result<Vec<Pdu>, String> {
    let source = if req.from.is_empty() {
        Address::default()
    } else {
        address(&req.from, true)?
    };
    let base = SubmitSm {
        source,
        dest: dest.clone(),
        registered_delivery: req.registered_delivery,
        validity_period: req
            .validity_s
            .map_or_else(COctet::default, |s| COctet::from(relative_time(s).as_str())),
        schedule_delivery_time: req
            .deferred_s
            .filter(|s| *s > 0)
            .map_or_else(COctet::default, |s| COctet::from(relative_time(s).as_str())),
        ..SubmitSm::default()
    };
    let pdu = |sm: SubmitSm, tlvs: Tlvs| Pdu {
        command_status: crate::smpp::CommandStatus::ROK,
        sequence_number: 1,
        body: Body::SubmitSm(sm),
        tlvs,
    };
    let with_udh = |data: Vec<u8>| -> Vec<u8> {
        let mut v = req.udh.clone();
        v.extend_from_slice(&data);
        v
    };
    let udhi = if req.udh.is_empty() { 0 } else { 0x40 };
    match &req.content {
        Content::Octets { data_coding, data } => {
            let ud = with_udh(data.clone());
            if ud.len() <= 140 {
                return Ok(vec![pdu(
                    SubmitSm {
                        esm_class: udhi,
                        data_coding: *data_coding,
                        short_message: Bytes::from(ud),
                        ..base
                    },
                    Tlvs::default(),
                )]);
            }
            if udhi != 0 {
                return Err(format!(
                    "udh and data are {} octets, over the 140 of one SMS",
                    ud.len()
                ));
            }
            let mut tlvs = Tlvs::default();
            tlvs.set(tlv::tag::MESSAGE_PAYLOAD, &ud);
            Ok(vec![pdu(
                SubmitSm {
                    data_coding: *data_coding,
                    ..base
                },
                tlvs,
            )])
        }
        Content::Text { text, charset } => {
            let zero_gsm = if zero.is_gsm() { zero } else { Charset::Gsm7 };
            let (gsm, fallback) = match charset {
                None if zero.is_gsm() => (Some(zero), Charset::Ucs2),
                None if zero == Charset::Latin1 => (None, Charset::Latin1),
                None => (Some(Charset::Gsm7), Charset::Ucs2),
                Some(c) if c.is_gsm() => (Some(zero_gsm), Charset::Ucs2),
                Some(c) => (None, *c),
            };
            let opts = SegmentOptions {
                gsm,
                national: &[],
                fallback,
                zero,
                concatenation: if req.udh.is_empty() {
                    Concatenation::Udh8
                } else {
                    Concatenation::Payload
                },
                reference,
                max_parts: 255,
            };
            let (plan, parts) = segment(text, &opts).map_err(|e| e.to_string())?;
            let forced_ok = match charset {
                None => true,
                Some(c) if c.is_gsm() => plan.charset.is_gsm(),
                Some(c) => plan.charset == *c,
            };
            if !forced_ok {
                return Err(format!(
                    "the text does not fit the coding asked for ({}); leave the coding out to have it chosen",
                    charset.map_or("?", |c| c.name())
                ));
            }
            if !req.udh.is_empty() {
                let Some(part) = parts.into_iter().next() else {
                    return Err("no text".into());
                };
                let ud = with_udh(part.user_data);
                if ud.len() > 254 {
                    return Err("udh and text are over one SMS".into());
                }
                return Ok(vec![pdu(
                    SubmitSm {
                        esm_class: 0x40,
                        data_coding: part.data_coding,
                        short_message: Bytes::from(ud),
                        ..base
                    },
                    Tlvs::default(),
                )]);
            }
            Ok(parts
                .into_iter()
                .map(|p| {
                    pdu(
                        SubmitSm {
                            esm_class: if p.udhi { 0x40 } else { 0 },
                            data_coding: p.data_coding,
                            short_message: Bytes::from(p.user_data),
                            ..base.clone()
                        },
                        Tlvs::default(),
                    )
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> Address {
        address("+31611", false).unwrap()
    }

    #[test]
    fn json_submit_with_every_field() {
        let r = from_json(br#"{"from":"Shop","to":["+3161","0612"],"text":"hi","registered_delivery":true,"validity":3600}"#).unwrap();
        assert_eq!(r.from, "Shop");
        assert_eq!(r.to, ["+3161", "0612"]);
        assert_eq!(r.registered_delivery, 1);
        assert_eq!(r.validity_s, Some(3600));
        let one = from_json(br#"{"to":"123","hex":"0102","data_coding":4}"#).unwrap();
        assert_eq!(
            one.content,
            Content::Octets {
                data_coding: 4,
                data: vec![1, 2]
            }
        );
    }

    #[test]
    fn json_errors_name_each_field() {
        let e =
            from_json(br#"{"to":5,"text":"a","hex":"zz","registred_delivery":1,"validity":-1}"#)
                .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|(f, _)| f.as_str()).collect();
        for f in ["registred_delivery", "to", "text", "validity"] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        assert!(e
            .json()
            .starts_with("{\"error\":\"invalid request\",\"fields\":{"));
        assert_eq!(from_json(b"{").unwrap_err().0[0].0, "body");
        assert_eq!(from_json(b"[1]").unwrap_err().0[0].0, "body");
        assert_eq!(from_json(br#"{"text":"x"}"#).unwrap_err().0[0].0, "to");
        let bad_to = from_json(br#"{"to":"12a","text":"x"}"#).unwrap_err();
        assert_eq!(bad_to.0[0].0, "to");
        let cb = from_json(br#"{"to":"1","text":"x","callback_url":"ftp://a"}"#).unwrap_err();
        assert_eq!(cb.0[0].0, "callback_url", "{cb:?}");
        let cb = from_json(br#"{"to":"1","text":"x","callback_url":"http://a/cb"}"#).unwrap();
        assert_eq!(
            (cb.report_to.as_str(), cb.registered_delivery),
            ("http://a/cb", 1)
        );
    }

    #[test]
    fn kannel_parameters() {
        let p = super::super::form::pairs(
            b"username=demo&password=pw&from=123&to=456+789&text=caf%C3%A9&dlr-mask=3&smsc=x&validity=10",
        );
        let (r, cred) = from_kannel(&p).unwrap();
        assert_eq!(cred, Some(("demo".into(), "pw".into())));
        assert_eq!(r.to, ["456", "789"]);
        assert_eq!(
            r.content,
            Content::Text {
                text: "café".into(),
                charset: None
            }
        );
        assert_eq!(r.registered_delivery, 1);
        assert_eq!(r.validity_s, Some(600));
        // UCS2 in UTF-16BE by default.
        let p = super::super::form::pairs(b"user=a&pass=b&to=1&coding=2&text=%00h%04%10");
        let (r, _) = from_kannel(&p).unwrap();
        assert_eq!(
            r.content,
            Content::Text {
                text: "hА".into(),
                charset: Some(Charset::Ucs2)
            }
        );
        let p = super::super::form::pairs(b"to=1&text=x&dlr-url=http%3A%2F%2Fa&coding=7");
        let e = from_kannel(&p).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["coding", "dlr-mask"]);
        let p = super::super::form::pairs(
            b"to=1&text=x&dlr-mask=3&dlr-url=http%3A%2F%2Fa%2Fdlr%3Ftype%3D%25d",
        );
        let (r, _) = from_kannel(&p).unwrap();
        assert_eq!(r.report_to, "GET http://a/dlr?type=%d");
    }

    #[test]
    fn a_short_gsm_text_is_one_message_in_the_accounts_zero() {
        let r = from_json(br#"{"from":"+44","to":"1","text":"hello @","registered_delivery":2}"#)
            .unwrap();
        let m = messages(&r, &dest(), Charset::Gsm7, 7).unwrap();
        assert_eq!(m.len(), 1);
        let Body::SubmitSm(sm) = &m[0].body else {
            panic!()
        };
        assert_eq!(sm.data_coding, 0);
        assert_eq!(&sm.short_message[..], b"hello \x00");
        assert_eq!(sm.registered_delivery, 2);
        assert_eq!((sm.source.ton, sm.source.npi), (1, 1));
        assert_eq!(sm.esm_class, 0);
    }

    #[test]
    fn long_and_non_gsm_texts_are_cut_into_parts() {
        let text = "x".repeat(161);
        let r = from_json(format!(r#"{{"to":"1","text":"{text}"}}"#).as_bytes()).unwrap();
        let m = messages(&r, &dest(), Charset::Gsm7, 9).unwrap();
        assert_eq!(m.len(), 2);
        for (i, p) in m.iter().enumerate() {
            let Body::SubmitSm(sm) = &p.body else {
                panic!()
            };
            assert_eq!(sm.esm_class, 0x40);
            assert_eq!(&sm.short_message[..6], &[5, 0, 3, 9, 2, i as u8 + 1]);
        }
        let r = from_json(r#"{"to":"1","text":"Привет"}"#.as_bytes()).unwrap();
        let m = messages(&r, &dest(), Charset::Gsm7, 1).unwrap();
        let Body::SubmitSm(sm) = &m[0].body else {
            panic!()
        };
        assert_eq!(sm.data_coding, 8);
        assert_eq!(sm.short_message.len(), 12);
        // Forced GSM that does not fit is refused with why.
        let r = from_json(r#"{"to":"1","text":"Привет","data_coding":0}"#.as_bytes()).unwrap();
        assert!(messages(&r, &dest(), Charset::Gsm7, 1).is_err());
    }

    #[test]
    fn octets_pass_as_they_are_or_in_message_payload() {
        let r =
            from_json(format!(r#"{{"to":"1","hex":"{}"}}"#, "ab".repeat(200)).as_bytes()).unwrap();
        let m = messages(&r, &dest(), Charset::Gsm7, 1).unwrap();
        assert_eq!(
            m[0].tlvs.get(tlv::tag::MESSAGE_PAYLOAD).map(|v| v.len()),
            Some(200)
        );
        let r = from_json(br#"{"to":"1","hex":"0102","udh":"050003010201"}"#).unwrap();
        let m = messages(&r, &dest(), Charset::Gsm7, 1).unwrap();
        let Body::SubmitSm(sm) = &m[0].body else {
            panic!()
        };
        assert_eq!(sm.esm_class, 0x40);
        assert_eq!(&sm.short_message[..], &[5, 0, 3, 1, 2, 1, 1, 2]);
        assert!(from_json(br#"{"to":"1","hex":"01","udh":"0500"}"#).is_err());
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative_time(3661), "000000010101000R");
        assert_eq!(relative_time(2 * 86_400), "000002000000000R");
        assert_eq!(relative_time(u64::MAX), "000099235959000R");
        assert_eq!(relative_time(3661).len(), 16);
    }
}
