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
    assert_eq!((d.handled, &d.target, &d.changes), (e.handled, &e.target, &e.changes), "explain differs for {called}");
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
    assert_eq!(route(&t, "88229002", &[("module", "smsc_map"), ("submit_info", "SMPP")]).1, "smppserver/client1_system_id");
    let (_, target, _) = route(&t, "88229002", &map);
    assert_ne!(target, "smppserver/client1_system_id", "without submit_info=SMPP it does not go to client1");
    assert_eq!(target, "http", "it falls to the 8822 rule");
    assert_eq!(route(&t, "88229003", &map).1, "smppserver/client2_system_id");
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
        &[("module", "smsc_map"), ("sms_type", "status_report"), ("submit_info", "HTTP"), ("billid", "1234-5"), ("sms_stat", "DELIVRD")],
    );
    assert!(handled);
    assert_eq!(target, "http://10.10.1.120/status?billid=1234-5&status=DELIVRD");
    // A status report for an SMPP-submitted message follows the module rules.
    let (_, target, _) = route(&t, "88229002", &[("module", "smsc_map"), ("sms_type", "status_report"), ("submit_info", "SMPP")]);
    assert_eq!(target, "smppserver/client1_system_id");
}
