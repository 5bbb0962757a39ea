//! Where a status report goes, for the flow ([`ReportRouter`]): the callback its message was
//! submitted with (a JSON `callback_url`, or a Kannel `dlr-url` filled in now), else, for a
//! message submitted over HTTP, what the route rules say for it with
//! `sms_type=status_report` (the seed's
//! `${sms_type}^status_report$=if ${submit_info}^HTTP=http://...`) when that is `http` or a
//! URL, else (`None`) the originator's receiver binds. An ESME that submitted over SMPP always
//! gets its reports over SMPP: rules written for its messages (`${module}^smppserver$=http`)
//! do not take its reports away. The rules see the report with `called` its
//! destination (the message's sender, or its recipient when it had no sender),
//! `sms_type=status_report`, `sms_stat`, `billid` and the message's `module` and
//! `submit_info`.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;

use super::routing::{as_text, fill_params, Route, Router};
use super::Shared;
use crate::flow::{ReportRouter, Target};
use crate::ids::ShardId;
use crate::smpp::Pdu;
use crate::store::record::StoredMessage;

pub struct ShardReports {
    shared: Arc<Shared>,
    router: RefCell<Router>,
    shard: ShardId,
}

impl ShardReports {
    pub fn new(shared: Arc<Shared>, shard: ShardId) -> ShardReports {
        ShardReports {
            shared,
            router: RefCell::new(Router::new(0x5EED_0F4E ^ shard as u64)),
            shard,
        }
    }
}

impl ReportRouter for ShardReports {
    fn route(&self, msg: &StoredMessage, report: &Pdu) -> Option<(Target, Bytes)> {
        // Most reports: an SMPP submit's, with no callback: nothing to work out.
        if msg.report_to.is_empty() && !msg.origin.starts_with(b"http/") {
            return None;
        }
        let billid = msg.billid.to_hex();
        if !msg.report_to.is_empty() {
            let to = match msg.report_to.strip_prefix(b"GET ") {
                Some(template) => Bytes::from(format!(
                    "GET {}",
                    crate::http::target::kannel_dlr_url(
                        &String::from_utf8_lossy(template),
                        report,
                        as_text(&billid)
                    )
                )),
                None => msg.report_to.clone(),
            };
            if let Some(h) = self.shared.endpoints.for_target(&to) {
                return Some((Target::Http(h), to));
            }
        }
        let origin = as_text(&msg.origin);
        let (module, system_id) = origin.split_once('/').unwrap_or(("smppserver", origin));
        // An SMPP originator gets its reports over SMPP, whatever the rules say for messages
        // of its module; only reports on HTTP submits are routed.
        if module != "http" || self.shared.routes.version() == 0 {
            return None;
        }
        let m = report.message()?;
        let mut r = self.router.borrow_mut();
        // A report is routed on the address it goes to (the message's sender); a message
        // submitted without one (HTTP's `from` is optional) on its recipient's, since the
        // rules route nothing with an empty called number.
        let called = if m.dest.addr.as_bytes().is_empty() {
            m.source
        } else {
            m.dest
        };
        fill_params(
            &mut r.params,
            report,
            m.source,
            &[called],
            system_id,
            module,
        );
        r.params.set("billid", as_text(&billid));
        match r.decide(&self.shared, None, self.shard) {
            Route::Http(h) => Some((Target::Http(h), r.url.clone()?)),
            _ => None,
        }
    }
}
