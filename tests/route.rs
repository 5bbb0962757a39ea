//! The route engine: the seed's examples as the seed describes them, each feature of
//! regexroute, the loader's errors, and the prefix index against a naive evaluator.

use std::collections::HashMap;

use proptest::prelude::*;
use smppgw::route::subst::Env;
use smppgw::route::{Params, RouteTable};

#[derive(Default)]
struct TestEnv {
    vars: HashMap<String, String>,
}

impl Env for TestEnv {
    fn var(&self, n: &str) -> Option<String> {
        self.vars.get(n).cloned()
    }
    fn set_var(&mut self, n: &str, v: &str) {
        self.vars.insert(n.into(), v.into());
    }
    fn random_digit(&mut self) -> u8 {
        4
    }
    fn impure(&mut self) {}
}

fn table(text: &str) -> RouteTable {
    RouteTable::load("regexroute.conf", text, 1).unwrap_or_else(|e| panic!("{e:?}"))
}

fn params(called: &str, extra: &[(&str, &str)]) -> Params {
    let mut p: Params = extra.iter().copied().collect();
    p.set("called", called);
    p
}

/// (handled, target, final parameters).
fn route(t: &RouteTable, called: &str, extra: &[(&str, &str)]) -> (bool, String, Params) {
    let mut p = params(called, extra);
    let d = t.route(&p, &mut TestEnv::default(), false);
    // The explain mode (no prefix index, full trail) must decide the same.
    let e = t.route(&p, &mut TestEnv::default(), true);
    assert_eq!(
        (d.handled, &d.target, &d.changes),
        (e.handled, &e.target, &e.changes),
        "explain differs for {called}"
    );
    d.apply(&mut p);
    (d.handled, d.target, p)
}

fn seed() -> RouteTable {
    table(include_str!("fixtures/seed-regexroute.conf"))
}

#[test]
fn the_seeds_examples_route_as_the_seed_describes() {
    let t = seed();
    let map = [("module", "smsc_map")];
    assert_eq!(route(&t, "88229009", &map).1, "http");
    assert_eq!(route(&t, "+88229009", &map).1, "http");
    assert_eq!(
        route(
            &t,
            "88229002",
            &[("module", "smsc_map"), ("submit_info", "SMPP")]
        )
        .1,
        "smppserver/client1_system_id"
    );
    let (_, target, _) = route(&t, "88229002", &map);
    assert_ne!(
        target, "smppserver/client1_system_id",
        "without submit_info=SMPP it does not go to client1"
    );
    assert_eq!(target, "http", "it falls to the 8822 rule");
    assert_eq!(
        route(&t, "88229003", &map).1,
        "smppserver/client2_system_id"
    );
    assert_eq!(route(&t, "88221234", &map).1, "http");
    assert_eq!(route(&t, "+88225555", &map).1, "http");
    assert_eq!(route(&t, "4477001", &map).1, "smsc_map");
}

#[test]
fn the_seeds_module_rules_set_retries_and_go_on() {
    let t = seed();
    let (handled, target, p) = route(&t, "88229009", &[("module", "smppserver")]);
    assert!(!handled && target.is_empty());
    assert_eq!(p.get("retries"), Some("10"));
    let (handled, _, p) = route(&t, "123", &[("module", "smppclient")]);
    assert!(!handled);
    assert_eq!(p.get("retries"), Some("8"));
}

#[test]
fn the_seeds_status_report_for_http_goes_to_the_status_url() {
    let t = seed();
    let (handled, target, _) = route(
        &t,
        "88229002",
        &[
            ("module", "smsc_map"),
            ("sms_type", "status_report"),
            ("submit_info", "HTTP"),
            ("billid", "1234-5"),
            ("sms_stat", "DELIVRD"),
        ],
    );
    assert!(handled);
    assert_eq!(
        target,
        "http://10.10.1.120/status?billid=1234-5&status=DELIVRD"
    );
    // A status report for an SMPP-submitted message follows the module rules.
    let (_, target, _) = route(
        &t,
        "88229002",
        &[
            ("module", "smsc_map"),
            ("sms_type", "status_report"),
            ("submit_info", "SMPP"),
        ],
    );
    assert_eq!(target, "smppserver/client1_system_id");
}

#[test]
fn first_match_wins_and_repeated_sections_join_in_file_order() {
    let t = table("[default]\n^1=a\n[other]\n.*=x\n[default]\n^1=b\n^2=c\n");
    assert_eq!(route(&t, "123", &[]).1, "a");
    assert_eq!(route(&t, "234", &[]).1, "c");
    assert!(
        !route(&t, "345", &[]).0,
        "falling off the end is not handled"
    );
}

#[test]
fn param_and_function_keys_negation_and_the_default_rule() {
    let t = table(concat!(
        "[default]\n",
        "${kind}^vip$=v\n",
        "${flag}=flagged\n", // default rule: true-ish
        "${off}^=falsy\n",   // default rule minus ^: false-ish
        "$(length,${called})^3$=three\n",
        "${zone}^eu^=not_eu\n", // trailing ^ negates
        ".*=rest\n"
    ));
    assert_eq!(route(&t, "1", &[("kind", "vip")]).1, "v");
    assert_eq!(route(&t, "1", &[("flag", "yes")]).1, "flagged");
    assert_eq!(route(&t, "1", &[("flag", "no"), ("off", "0")]).1, "falsy");
    // An absent parameter is false-ish, so `${off}^` matches it.
    assert_eq!(route(&t, "1", &[]).1, "falsy");
    assert_eq!(route(&t, "123", &[("zone", "eu"), ("off", "1")]).1, "three");
    assert_eq!(
        route(&t, "1234", &[("zone", "us"), ("off", "1")]).1,
        "not_eu"
    );
    assert_eq!(route(&t, "1234", &[("zone", "eu"), ("off", "1")]).1, "rest");
}

#[test]
fn a_bare_caret_key_flips_the_default_rule() {
    // Yate's default rule ends in `^` (true unless false-ish); a `defaultrule` without one is
    // a plain match, and `${x}^` its negation.
    let t =
        table("[priorities]\ndefaultrule=^yes$\n[default]\n${x}=plain\n${y}^=flipped\n.*=rest\n");
    assert_eq!(route(&t, "1", &[("x", "yes")]).1, "plain");
    assert_eq!(route(&t, "1", &[("x", "no"), ("y", "no")]).1, "flipped");
    assert_eq!(route(&t, "1", &[("x", "no"), ("y", "yes")]).1, "rest");
    // A key's default is trimmed too.
    let t = table("[default]\n${z$ def}^def$=default\n.*=rest\n");
    assert_eq!(route(&t, "1", &[]).1, "default");
}

#[test]
fn condition_chains_group_from_the_right() {
    // A or B and C = A or (B and C)
    let t = table("[default]\n${a}^1$=or ${b}^1$=and ${c}^1$=yes\n.*=no\n");
    let r = |a: &str, b: &str, c: &str| route(&t, "x", &[("a", a), ("b", b), ("c", c)]).1;
    assert_eq!(r("1", "0", "0"), "yes");
    assert_eq!(r("0", "1", "1"), "yes");
    assert_eq!(r("0", "1", "0"), "no");
    // A and B or C = A and (B or C)
    let t = table("[default]\n${a}^1$=and ${b}^1$=or ${c}^1$=yes\n.*=no\n");
    let r = |a: &str, b: &str, c: &str| route(&t, "x", &[("a", a), ("b", b), ("c", c)]).1;
    assert_eq!(r("1", "0", "1"), "yes");
    assert_eq!(r("0", "1", "1"), "no");
    let t = table("[default]\n^0=if ${x}^y$=ok\n.*=other\n");
    assert_eq!(route(&t, "01", &[("x", "y")]).1, "ok");
    assert_eq!(route(&t, "01", &[("x", "z")]).1, "other");
}

#[test]
fn blocks_with_chained_else_if_and_else() {
    let t = table(concat!(
        "[default]\n",
        "^1={\n",
        "  ^12=one-two\n",
        "} ^2={\n",
        "  .*=two\n",
        "} ={\n",
        "  ${p}^x$=else-x\n",
        "  .*=else\n",
        "}\n",
        ".*=after\n"
    ));
    assert_eq!(route(&t, "12", &[]).1, "one-two");
    assert_eq!(
        route(&t, "13", &[]).1,
        "after",
        "block taken but nothing routed: falls through"
    );
    assert_eq!(route(&t, "2", &[]).1, "two");
    assert_eq!(route(&t, "3", &[("p", "x")]).1, "else-x");
    assert_eq!(route(&t, "3", &[]).1, "else");
    // `}=target` after a block: runs only when the block was not taken.
    let t = table("[default]\n^1={\n^11=eleven\n}=not-one\n.*=end\n");
    assert_eq!(route(&t, "2", &[]).1, "not-one");
    assert_eq!(route(&t, "12", &[]).1, "end");
    // Nested blocks.
    let t = table("[default]\n^1={\n^12={\n^123=deep\n}\n^1=shallow\n}\n");
    assert_eq!(route(&t, "1234", &[]).1, "deep");
    assert_eq!(route(&t, "129", &[]).1, "shallow");
}

#[test]
fn parameters_set_and_cleared_and_empty_targets_continue() {
    let t = table("[default]\n.*=;a=1;b=${a}-2;gone\n^9=;retries=10\n.*=done;c=\\0;d=x=y\n");
    let (handled, target, p) = route(&t, "9", &[("gone", "here")]);
    assert!(handled);
    assert_eq!(target, "done");
    assert_eq!(p.get("a"), Some("1"));
    assert_eq!(p.get("b"), Some("1-2"), "pieces apply left to right");
    assert_eq!(p.get("gone"), None, "a bare name clears");
    assert_eq!(p.get("retries"), Some("10"));
    assert_eq!(p.get("c"), Some("9"));
    assert_eq!(p.get("d"), Some("x=y"));
}

#[test]
fn captures_substitute_into_values() {
    let t = table("[default]\n^\\(44\\)\\(7.*\\)$=smppclient/uk_\\1;local=0\\2\n");
    let (_, target, p) = route(&t, "447700", &[]);
    assert_eq!(target, "smppclient/uk_44");
    assert_eq!(p.get("local"), Some("07700"));
}

#[test]
fn reject_with_an_error() {
    let t = table("[default]\n^666=-;error=forbidden;reason=blocked number\n");
    let (handled, target, p) = route(&t, "666", &[]);
    assert!(handled);
    assert_eq!(target, "-");
    assert_eq!(p.get("error"), Some("forbidden"));
}

#[test]
fn include_return_goto_and_match() {
    let t = table(concat!(
        "[default]\n",
        "^1=include sub\n",
        "^1=after-include\n",
        "^2=goto other\n",
        "^2=never\n",
        "^3=match 1999\n",
        "^1999=matched-new\n",
        "[sub]\n",
        "^11=from-sub\n",
        "^1=return\n",
        "[other]\n",
        "^2=from-other\n"
    ));
    assert_eq!(route(&t, "11", &[]).1, "from-sub");
    assert_eq!(
        route(&t, "12", &[]).1,
        "after-include",
        "a sub-context returning false continues here"
    );
    assert_eq!(route(&t, "2", &[]).1, "from-other");
    assert!(!route(&t, "29", &[("x", "y")]).0 || route(&t, "29", &[]).1 == "from-other");
    assert_eq!(route(&t, "3", &[]).1, "matched-new");
    // return true ends routing as handled.
    let t = table("[default]\n.*=include s\n.*=later\n[s]\n.*=return true\n");
    assert!(route(&t, "1", &[]).0);
}

#[test]
fn contexts_choose_the_section_from_the_caller() {
    let t = table(concat!(
        "[contexts]\n",
        "^100=vip\n",
        "^200=-;error=forbidden\n",
        "[vip]\n",
        ".*=vip-route\n",
        "[default]\n",
        ".*=default-route\n"
    ));
    assert_eq!(route(&t, "5", &[("caller", "1001")]).1, "vip-route");
    assert_eq!(route(&t, "5", &[("caller", "3001")]).1, "default-route");
    assert_eq!(route(&t, "5", &[("caller", "2001")]).1, "-");
    assert_eq!(
        route(&t, "5", &[("caller", "1001"), ("context", "default")]).1,
        "default-route",
        "a given context wins"
    );
    assert_eq!(
        route(&t, "5", &[("caller", "1001"), ("context", "")]).1,
        "vip-route",
        "an empty context is none"
    );
}

#[test]
fn functions_in_values() {
    let t = table(concat!(
        "[default]\n",
        "^1=x;len=$(length,${called});up=$(upper,abc);sum=$(add,${n},1);eq=$(eq,${n},41);idx=$(index,2,a,b,c);rot=$(rotate,1,a,b,c);r=$(random,9??)\n"
    ));
    let (_, _, p) = route(&t, "1234", &[("n", "41")]);
    assert_eq!(p.get("len"), Some("4"));
    assert_eq!(p.get("up"), Some("ABC"));
    assert_eq!(p.get("sum"), Some("42"));
    assert_eq!(p.get("eq"), Some("true"));
    assert_eq!(p.get("idx"), Some("c"));
    assert_eq!(p.get("rot"), Some("b c a"));
    assert_eq!(p.get("r"), Some("944"));
}

#[test]
fn random_makes_a_decision_uncacheable() {
    let t = table("[default]\n^1=x;r=$(random,??)\n^2=y\n");
    let mut env = TestEnv::default();
    assert!(!t.route(&params("1", &[]), &mut env, false).cacheable);
    assert!(t.route(&params("2", &[]), &mut env, false).cacheable);
}

#[test]
fn loader_warnings_name_file_line_and_the_file_still_loads() {
    let t = table(
        "[priorities]\nextended=yes\n\
         [extra]\nfoo=bar\n\
         [default]\n\
         ^1=goto nowhere\n\
         ^2=x;y=$(frobnicate,1)\n\
         ^3=dispatch something\n\
         [1-9]\\+=smppclient/up\n\
         .*=include other\n\
         [other]\n\
         .*=smppclient/up\n",
    );
    let warnings: Vec<String> = t.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "regexroute.conf: extended=yes keeps the basic-syntax default rule; set defaultrule for ${param} keys without a regex",
            "regexroute.conf:3: [extra] installs Yate message handlers; the gateway routes messages only, ignored",
            "regexroute.conf:6: goto nowhere: there is no [nowhere] section; the line routes nowhere",
            "regexroute.conf:7: unknown function $(frobnicate,1): the gateway does not have it; it gives an empty string",
            "regexroute.conf:8: \"dispatch\" is a Yate engine action the gateway does not perform; the line does nothing",
            "regexroute.conf:9: [1-9] is never used: no [contexts] rule, include or goto names it (a rule that starts with `[` is read as a section header: write ^[...] instead)",
        ]
    );
    // Block structure Yate tolerates: warned about, loaded.
    for (text, expected) in [
        ("[default]\n}\n", "regexroute.conf:2: `}` closes no open block"),
        (
            "[default]\n^1={\n^2=x\n",
            "regexroute.conf:3: [default]: 1 block(s) opened with `{` are never closed (they end with the section)",
        ),
        (
            "^1=x\n[default]\n",
            "regexroute.conf:1: rule outside any [section]: never used",
        ),
    ] {
        let t = table(text);
        assert_eq!(
            t.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            [expected],
            "{text:?}"
        );
    }
    let deep = format!(
        "[default]\n{}^1=x\n{}",
        "^1={\n".repeat(11),
        "}\n".repeat(11)
    );
    let d = table(&deep);
    assert!(
        d.warnings[0]
            .to_string()
            .starts_with("regexroute.conf:12: blocks nested deeper than 10"),
        "{:?}",
        d.warnings
    );
    let (handled, _, _) = route(&d, "1", &[]);
    assert!(!handled, "not routed past the limit");
    let open = table("[default]\n^1={\n^1=x\n");
    assert_eq!(
        route(&open, "1", &[]).1,
        "x",
        "an unclosed block ends with its section"
    );

    // The lines that only warn still behave as Yate's do: no route, an empty value.
    let (handled, _, _) = route(&t, "1", &[]);
    assert!(!handled);
    let (_, target, p) = route(&t, "2", &[]);
    assert_eq!((target.as_str(), p.get("y")), ("x", Some("")));
}

#[test]
fn a_leading_backslash_plus_is_a_plus_sign_as_grep_reads_it() {
    // `\+` with nothing before it is the character in GNU basic syntax; `+\?` is an optional
    // plus. A run of such rules goes through the prefix index, which must read them the same.
    let t = table(
        "[default]\n^\\+44=smppclient/plus44\n^+\\?33=smppclient/any33\n^\\+49=smppclient/plus49\n\
         ^\\+31=smppclient/plus31\n^\\+32=smppclient/plus32\n.*=smppclient/other\n",
    );
    for (called, want) in [
        ("+447700", "smppclient/plus44"),
        ("447700", "smppclient/other"),
        ("+3312", "smppclient/any33"),
        ("3312", "smppclient/any33"),
        ("+491", "smppclient/plus49"),
        ("491", "smppclient/other"),
        ("++44", "smppclient/other"),
    ] {
        let (handled, target, _) = route(&t, called, &[]);
        assert!(handled, "{called}");
        assert_eq!(target, want, "{called}");
    }
}

#[test]
fn extended_and_insensitive_syntax() {
    let t = table("[priorities]\nextended=yes\ninsensitive=yes\ndefaultrule=^(false|no|off|0*)$^\n[default]\n^(44|33)+$=pair\n${m}^SMPP=smpp\n");
    assert_eq!(route(&t, "4433", &[]).1, "pair");
    assert_eq!(route(&t, "9", &[("m", "smpp")]).1, "smpp");
    // Basic syntax: the same characters are literals.
    let t = table("[default]\n^(44|33)+$=literal\n");
    assert_eq!(route(&t, "(44|33)+", &[]).1, "literal");
}

#[test]
fn loader_errors_name_file_line_and_what_is_wrong() {
    let cases = [
        (
            "[default]\n^\\(a=x\n",
            "regexroute.conf:2: regex \"^\\\\(a\": \\( is never closed by \\)",
        ),
        (
            "[default]\n^a\\1=x\n",
            "regexroute.conf:2: regex \"^a\\\\1\": back-reference \\1 is not supported",
        ),
        (
            "[default]\n${=x\n",
            "regexroute.conf:2: \"${\": ${ without its closing }",
        ),
        (
            "[default]\n${ }x=y\n",
            "regexroute.conf:2: \"${ }x\": empty parameter name in ${}",
        ),
        (
            "[default]\n^1=if ${a}x\n",
            "regexroute.conf:2: \"if\" condition without its `=`: \"if ${a}x\"",
        ),
        (
            "[default]\n^[abc=x\n",
            "regexroute.conf:2: regex \"^[abc\": a bracket expression [ is never closed",
        ),
        (
            "[default]\nab\\=x\n",
            "regexroute.conf:2: regex \"ab\\\\\": ends with a lone backslash",
        ),
        (
            "[default]\n^[[:digit]=x\n",
            "regexroute.conf:2: regex \"^[[:digit]\": [: is never closed by :]",
        ),
        (
            "[default]\n$(length,1=x\n",
            "regexroute.conf:2: \"$(length,1\": $( without its closing )",
        ),
        (
            "[default]\n^1=x;y=$(length,1\n",
            "regexroute.conf:2: $( without its closing )",
        ),
        (
            "[default]\n^1=if =x\n",
            "regexroute.conf:2: empty \"if\" condition",
        ),
        (
            "[default]\n^1=if ${a}\\(=x\n",
            "regexroute.conf:2: regex \"\\\\(\": \\( is never closed by \\)",
        ),
        (
            "[default]\n^a\\{x\\}=x\n",
            "regexroute.conf:2: regex \"^a\\\\{x\\\\}\": \\{ must be followed by a count and \\}, as in \\{2,4\\}",
        ),
        (
            "[default]\n^a\\}=x\n",
            "regexroute.conf:2: regex \"^a\\\\}\": \\} without \\{",
        ),
        (
            "[default]\n^a\\)=x\n",
            "regexroute.conf:2: regex \"^a\\\\)\": a group is closed that was never opened",
        ),
        (
            "[default]\n\\{2\\}a=x\n",
            "regexroute.conf:2: regex \"\\\\{2\\\\}a\": \\{ has nothing to repeat",
        ),
        (
            "[priorities]\nextended=yes\n[default]\n^(4=x\n",
            "regexroute.conf:4: regex \"^(4\": ( is never closed",
        ),
    ];
    for (text, expected) in cases {
        let errs = RouteTable::load("regexroute.conf", text, 1).expect_err(text);
        let first = errs[0].to_string();
        assert!(
            first.starts_with(expected),
            "{text:?}\n got: {first}\nwant: {expected}"
        );
    }
}

/// A naive reference: lines in order, the first whose `^prefix` (or `^prefix$`) matches.
/// A key that is `^` alone is Yate's negation of an empty regex and never matches.
fn reference(rules: &[(String, bool, String)], called: &str) -> Option<String> {
    rules
        .iter()
        .find(|(p, exact, _)| {
            if *exact {
                called == p
            } else {
                !p.is_empty() && called.starts_with(p.as_str())
            }
        })
        .map(|r| r.2.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_prefix_index_decides_like_a_naive_evaluator(
        rules in proptest::collection::vec(("[0-9]{0,4}", any::<bool>(), "[a-z]{1,6}"), 1..60),
        numbers in proptest::collection::vec("[0-9]{0,6}", 1..40),
    ) {
        let mut text = String::from("[default]\n");
        for (p, exact, t) in &rules {
            text.push_str(&format!("^{p}{}=smppclient/{t}\n", if *exact { "$" } else { "" }));
        }
        let t = RouteTable::load("r.conf", &text, 1).unwrap();
        let reference_rules: Vec<(String, bool, String)> = rules.iter().map(|(p, e, t)| (p.clone(), *e, format!("smppclient/{t}"))).collect();
        for n in &numbers {
            if n.is_empty() { continue; }
            let d = t.route(&params(n, &[]), &mut TestEnv::default(), false);
            let want = reference(&reference_rules, n);
            prop_assert_eq!(d.handled, want.is_some(), "{}", n);
            prop_assert_eq!(d.target, want.unwrap_or_default(), "{}", n);
        }
    }
}

// ---- smppgw route: the explain tool, on real files ----

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smppgw"))
        .args(args)
        .env("SMPPGW_LOG", "error")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn conf_dir(name: &str, routes: Option<&str>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smppgw-route-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(r) = routes {
        std::fs::write(dir.join("regexroute.conf"), r).unwrap();
    }
    std::fs::write(
        dir.join("ysmpp.conf"),
        "[general]\n[listenerserver plain]\naddr=127.0.0.1\nport=2775\n",
    )
    .unwrap();
    dir
}

#[test]
fn route_cli_prints_the_trail_the_parameters_and_the_target() {
    let dir = conf_dir("seed", Some(include_str!("fixtures/seed-regexroute.conf")));
    let d = dir.to_str().unwrap();
    let (ok, out, err) = cli(
        &dir,
        &[
            "route",
            "--config",
            d,
            "+88229002",
            "module=smsc_map",
            "submit_info=SMPP",
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("route +88229002"), "{out}");
    assert!(out.contains("context   [default]"), "{out}");
    // The trail: both blocks entered, then the rule, with file:line.
    let trail: Vec<&str> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("regexroute.conf:"))
        .copied()
        .collect();
    assert_eq!(trail.len(), 3, "{out}");
    assert!(
        trail[0].contains("regexroute.conf:8 ")
            && trail[0].contains("${module}smsc_map={")
            && trail[0].ends_with("enters the block"),
        "{out}"
    );
    assert!(
        trail[1].contains("regexroute.conf:12 ") && trail[1].contains("${submit_info}^SMPP={"),
        "{out}"
    );
    assert!(
        trail[2].contains("regexroute.conf:13 ")
            && trail[2].ends_with("routes to smppserver/client1_system_id"),
        "{out}"
    );
    assert!(
        out.contains("target    smppserver/client1_system_id\n"),
        "{out}"
    );
    assert!(
        out.contains("action    deliver to a bound receiver of system_id client1_system_id"),
        "{out}"
    );

    let (ok, out, _) = cli(
        &dir,
        &["route", "--config", d, "5551234", "module=smppclient"],
    );
    assert!(ok);
    assert!(out.contains("regexroute.conf:5 "), "{out}");
    assert!(out.contains("sets      retries=8\n"), "{out}");
    assert!(out.contains("target    none\n"), "{out}");

    let (ok, out, _) = cli(&dir, &["route", "--config", d, "4412", "module=smsc_map"]);
    assert!(ok);
    assert!(out.contains("target    smsc_map\n"), "{out}");
    assert!(
        out.contains("module smsc_map is not served by this gateway: no route (accepted, ended undeliverable"),
        "{out}"
    );
}

#[test]
fn route_cli_refuses_bad_files_and_arguments() {
    let dir = conf_dir("bad", Some("[default]\n^1=x\n^\\(2=y\n^3=z;$(a\n"));
    let d = dir.to_str().unwrap();
    let (ok, out, err) = cli(&dir, &["route", "--config", d, "1"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("2 error(s) in"), "{err}");
    assert!(
        err.contains("  regexroute.conf:3: regex \"^\\\\(2\""),
        "{err}"
    );
    assert!(
        err.contains("  regexroute.conf:4: $( without its closing )"),
        "{err}"
    );
    // check refuses the same directory.
    let (ok, _, err) = cli(&dir, &["check", "--config", d]);
    assert!(!ok);
    assert!(err.contains("regexroute.conf:3"), "{err}");

    let empty = conf_dir("none", None);
    let e = empty.to_str().unwrap();
    let (ok, _, err) = cli(&empty, &["route", "--config", e, "1"]);
    assert!(!ok);
    assert!(err.contains("no regexroute.conf"), "{err}");

    let good = conf_dir("good", Some("[default]\n^1=smppclient/up\n"));
    let g = good.to_str().unwrap();
    let (ok, _, err) = cli(&good, &["route", "--config", g]);
    assert!(!ok);
    assert!(err.contains("route needs the called number"), "{err}");
    let (ok, _, err) = cli(&good, &["route", "--config", g, "1", "module"]);
    assert!(!ok);
    assert!(err.contains("\"module\": expected name=value"), "{err}");
    let (ok, out, err) = cli(&good, &["check", "--config", g]);
    assert!(ok, "{err}");
    assert!(
        out.contains("routes: regexroute.conf with 1 rule(s) in [default]"),
        "{out}"
    );
}
