//! Cross-check of our segmentation against a third-party implementation: the Python `smpplib`
//! package's `gsm.make_parts` (installed by `tests/peers/setup.sh`, which `.ci/run` runs).
//!
//! Where both are right the bytes must be identical. Where smpplib is wrong, the test pins the
//! exact difference, so that this file documents it:
//! - it splits a GSM escape pair across parts (its source says "FIXME: a character may be
//!   broken by splitting"): the handset shows the first part ending in a stray escape;
//! - it splits a UTF-16 surrogate pair across UCS2 parts: neither part decodes cleanly;
//! - its GSM table has a placeholder where 0x5F `§` belongs, so `§` forces the whole message
//!   to UCS2 (70 instead of 160 characters per part), and the backtick, which GSM lacks, is
//!   sent as 0x5F and shown as `§`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use smppgw::text::*;

struct Theirs {
    data_coding: u8,
    esm_class: u8,
    parts: Vec<Vec<u8>>,
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7E => {
                for u in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs smpplib over every text. The output is a flat JSON list that this reads with a
/// minimal scanner (numbers and hex strings only).
fn smpplib(texts: &[String]) -> Vec<Theirs> {
    let python = common::peers().python;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smpplib_parts.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let input = format!(
        "[{}]",
        texts
            .iter()
            .map(|t| json_string(t))
            .collect::<Vec<_>>()
            .join(",")
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "smpplib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("{\"data_coding\": ")
        .skip(1)
        .map(|obj| {
            let num = |key: &str| -> u8 {
                let s = if key == "data_coding" {
                    obj
                } else {
                    obj.split(&format!("\"{key}\": ")).nth(1).unwrap()
                };
                s.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let parts_str = obj
                .split("\"parts\": [")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            let parts = parts_str
                .split(',')
                .map(|h| h.trim().trim_matches('"'))
                .filter(|h| !h.is_empty())
                .map(|h| common::hex(h).to_vec())
                .collect();
            Theirs {
                data_coding: num("data_coding"),
                esm_class: num("esm_class"),
                parts,
            }
        })
        .collect()
}

fn ours(text: &str, reference: u16) -> (Plan, Vec<Part>) {
    segment(
        text,
        &SegmentOptions {
            reference,
            ..SegmentOptions::default()
        },
    )
    .unwrap()
}

/// smpplib picks a random 8-bit reference; use the same one for our parts.
fn their_reference(t: &Theirs) -> u16 {
    if t.parts.len() > 1 {
        t.parts[0][3] as u16
    } else {
        0
    }
}

fn assert_same(name: &str, text: &str, t: &Theirs) {
    let (_, parts) = ours(text, their_reference(t));
    let mine: Vec<Vec<u8>> = parts.iter().map(|p| p.user_data.clone()).collect();
    assert_eq!(mine, t.parts, "{name}: parts differ");
    assert_eq!(parts[0].data_coding, t.data_coding, "{name}: data_coding");
    assert_eq!(
        if parts[0].udhi { 0x40 } else { 0 },
        t.esm_class,
        "{name}: esm_class"
    );
}

#[test]
fn our_parts_match_smpplib_where_it_is_right_and_differ_where_it_is_wrong() {
    let same: Vec<(&str, String)> = vec![
        ("short GSM", "Hello from smppgw @ 10:00, 50% off!".into()),
        ("exactly 160 GSM", "x".repeat(160)),
        (
            "long GSM, 3 parts",
            "The quick brown fox jumps over the lazy dog. ".repeat(9),
        ),
        (
            "extension characters inside a part",
            "Total {10€} [ok] ~ ^ | \\ done".into(),
        ),
        ("short UCS2", "Привет, мир!".into()),
        (
            "long UCS2, 2 parts",
            "Съешь же ещё этих мягких французских булок, да выпей чаю. ".repeat(2),
        ),
        ("Greek in GSM", "ΔΦΓΛΩΠΨΣΘΞ".into()),
    ];
    let escape_split = format!("{}€{}", "a".repeat(152), "b".repeat(10));
    let surrogate_split = format!("{}😀{}", "ж".repeat(66), "ж".repeat(3));
    let section = "See § 5 of the terms".to_string();
    let backtick = "run `ls`".to_string();

    let mut texts: Vec<String> = same.iter().map(|c| c.1.clone()).collect();
    texts.extend([
        escape_split.clone(),
        surrogate_split.clone(),
        section.clone(),
        backtick.clone(),
    ]);
    let theirs = smpplib(&texts);
    assert_eq!(theirs.len(), texts.len());

    for (i, (name, text)) in same.iter().enumerate() {
        assert_same(name, text, &theirs[i]);
    }
    let n = same.len();

    // 1. The escape pair at a part boundary.
    let t = &theirs[n];
    assert_eq!(t.parts.len(), 2);
    assert_eq!(
        *t.parts[0].last().unwrap(),
        0x1B,
        "smpplib ends part 1 with a lone escape"
    );
    assert_eq!(
        t.parts[1][6], 0x65,
        "...and starts part 2 with the euro's second septet"
    );
    let (_, mine) = ours(&escape_split, their_reference(t));
    assert_eq!(mine[0].units, 152);
    assert_ne!(*mine[0].user_data.last().unwrap(), 0x1B);
    assert_eq!(
        &mine[1].user_data[6..8],
        &[0x1B, 0x65],
        "we move the euro whole"
    );

    // 2. The surrogate pair at a UCS2 part boundary.
    let t = &theirs[n + 1];
    assert_eq!(t.data_coding, 8);
    let last_unit = &t.parts[0][t.parts[0].len() - 2..];
    assert_eq!(
        last_unit,
        &[0xD8, 0x3D],
        "smpplib ends part 1 with a lone high surrogate"
    );
    let (_, mine) = ours(&surrogate_split, their_reference(t));
    let d = decode(&mine[0].user_data[6..], Charset::Ucs2, Shift::DEFAULT).unwrap();
    assert_eq!(d.invalid, 0);
    assert_eq!(&mine[1].user_data[6..10], &[0xD8, 0x3D, 0xDE, 0x00]);

    // 3. '§' is GSM 0x5F: smpplib falls back to UCS2, we stay in GSM.
    let t = &theirs[n + 2];
    assert_eq!(t.data_coding, 8, "smpplib sends § as UCS2");
    let (p, mine) = ours(&section, 0);
    assert_eq!(p.charset, Charset::Gsm7);
    assert_eq!(mine[0].user_data[4], 0x5F);

    // 4. '`' is not GSM: smpplib writes 0x5F, which the handset shows as '§'.
    let t = &theirs[n + 3];
    assert_eq!(
        (t.data_coding, t.parts[0][4]),
        (0, 0x5F),
        "smpplib sends ` as GSM 0x5F"
    );
    let (p, _) = ours(&backtick, 0);
    assert_eq!(
        p.charset,
        Charset::Ucs2,
        "we keep the backtick by sending UCS2"
    );
}
