//! The route files' regular expressions against the implementation Yate itself uses: glibc's
//! `regcomp`/`regexec`. Every pattern glibc compiles must compile here too (back-references
//! aside) and match exactly the same subjects; hand-picked cases first, then random patterns
//! made of the tokens route files use.

use std::ffi::CString;

use proptest::prelude::*;
use smppgw::route::posix::translate;

/// glibc's verdict: `None` when it refuses the pattern, else whether `subject` matches.
fn glibc(pattern: &str, subject: &str, extended: bool) -> Option<bool> {
    let pat = CString::new(pattern).ok()?;
    let subj = CString::new(subject).ok()?;
    let flags = if extended { libc::REG_EXTENDED } else { 0 } | libc::REG_NOSUB;
    // SAFETY: `regex_t` is plain data that `regcomp` initialises; both strings are
    // NUL-terminated and outlive the calls; `regfree` runs once, only after a successful
    // `regcomp`.
    unsafe {
        let mut re: libc::regex_t = std::mem::zeroed();
        if libc::regcomp(&mut re, pat.as_ptr(), flags) != 0 {
            return None;
        }
        let rc = libc::regexec(&re, subj.as_ptr(), 0, std::ptr::null_mut(), 0);
        libc::regfree(&mut re);
        Some(rc == 0)
    }
}

/// Ours: `Err` when the translation or the regex crate refuses the pattern.
fn ours(pattern: &str, subject: &str, extended: bool) -> Result<bool, String> {
    let t = translate(pattern, extended, false)?;
    let re = regex::Regex::new(&t).map_err(|e| format!("{t}: {e}"))?;
    Ok(re.is_match(subject))
}

fn agree(pattern: &str, subject: &str, extended: bool) -> Result<(), String> {
    let Some(want) = glibc(pattern, subject, extended) else {
        return Ok(());
    };
    match ours(pattern, subject, extended) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!(
            "{pattern:?} on {subject:?} ({}): glibc {want}, ours {got} (as {:?})",
            if extended { "extended" } else { "basic" },
            translate(pattern, extended, false)
        )),
        Err(e) => Err(format!(
            "{pattern:?} ({}): glibc compiles it, ours refuses: {e}",
            if extended { "extended" } else { "basic" }
        )),
    }
}

#[test]
fn route_file_idioms_match_as_glibc_matches_them() {
    let basic = [
        r"^+\?88229009$",
        r"^+\?8822.*$",
        r"^\+44",
        r"\+44",
        r"\(\+44\)",
        r"^\?4",
        r"a\|\+4",
        r"^*4",
        r"^\(44\|447\)7",
        r"^44\(1\|2\)\{2,3\}$",
        r"^[0-9]\{6,\}$",
        r"^[[:digit:]]\+$",
        r"^status_report$",
        r"^\(false\|no\|off\|disable\|f\|0*\)$",
        r"^SMPP",
        r"smppserver",
        r"a$b",
        r"a^b",
        r"^$",
        r".*",
        r"[]a]",
        r"[^]a]",
        r"[a\]",
        r"\.",
        r"a\{2\}",
        r"x*\?",
    ];
    let subjects = [
        "",
        "+88229009",
        "88229009",
        "882290091",
        "+447700",
        "447700",
        "?447",
        "44",
        "a",
        "+4",
        "*4",
        "4471",
        "447",
        "44121",
        "441212",
        "123456",
        "12345",
        "7",
        "status_report",
        "SMPP",
        "HTTP",
        "smppserver",
        "a$b",
        "a^b",
        "0",
        "00",
        "no",
        "]",
        "a",
        "\\",
        ".",
        "aa",
        "x",
    ];
    let extended = [
        r"^\+?8822",
        r"^(44|447)7",
        r"^[0-9]{6,}$",
        r"^(a|b)+$",
        r"a$",
        r"^status_report$",
    ];
    let mut failures = Vec::new();
    for (patterns, ext) in [(&basic[..], false), (&extended[..], true)] {
        for p in patterns {
            assert!(
                glibc(p, "", ext).is_some(),
                "{p:?}: glibc refuses it; pick a pattern Yate accepts"
            );
            for s in subjects {
                if let Err(e) = agree(p, s, ext) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Tokens of basic-syntax patterns: literals, operators and their literal look-alikes.
#[rustfmt::skip]
const BASIC: &[&str] = &[
    "4", "7", "a", "+", "?", "*", ".", "^", "$", "(", ")", "{", "}", "|", "]",
    r"\+", r"\?", r"\(", r"\)", r"\|", r"\.", r"\*", r"\^", r"\$",
    r"\{1,2\}", r"\{2\}", r"\{1,\}", r"\{0\}",
    "[0-9]", "[^4]", "[[:digit:]]", "[]4]",
];
/// Tokens of extended-syntax patterns.
#[rustfmt::skip]
const EXTENDED: &[&str] = &[
    "4", "7", "a", "+", "?", "*", ".", "^", "$", "(", ")", "|", "{", "}",
    r"\+", r"\?", r"\(", r"\)", r"\.", r"\|", r"\^", r"\$",
    "{1,2}", "{2}", "{1,}",
    "[0-9]", "[^4]", "[[:digit:]]",
];

fn pattern(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 1..7).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_basic_patterns_match_as_glibc_matches_them(
        p in pattern(BASIC),
        subjects in prop::collection::vec("[47a+?*.(){}|^$]{0,6}", 8),
    ) {
        for s in &subjects {
            if let Err(e) = agree(&p, s, false) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn random_extended_patterns_match_as_glibc_matches_them(
        p in pattern(EXTENDED),
        subjects in prop::collection::vec("[47a+?*.(){}|^$]{0,6}", 8),
    ) {
        for s in &subjects {
            if let Err(e) = agree(&p, s, true) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
