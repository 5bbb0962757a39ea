//! The HTTP endpoints messages have been routed to (scheme, host and port), numbered as they
//! first appear so that a [`Target::Http`](crate::flow::Target) is a plain index: each shard
//! queues and pools connections per endpoint. Route rules can name any URL, so the table
//! grows at run time, up to [`MAX_ENDPOINTS`]; a message for one more is not routed (and the
//! log says why).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::http::target::Call;
use crate::ids::HttpId;

/// Endpoints a gateway tells apart.
pub const MAX_ENDPOINTS: usize = 4096;

pub struct Endpoint {
    /// `http://host:port` or `https://host:port`.
    pub key: Bytes,
}

pub struct Endpoints {
    slots: Box<[OnceLock<Endpoint>]>,
    by_key: Mutex<HashMap<String, HttpId>>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            slots: (0..MAX_ENDPOINTS).map(|_| OnceLock::new()).collect(),
            by_key: Mutex::new(HashMap::new()),
        }
    }
}

impl Endpoints {
    /// The endpoint of a target as records name it (a URL, or `GET ` and a URL); added if
    /// new. `None`: not a URL, or the table is full.
    pub fn for_target(&self, target: &[u8]) -> Option<HttpId> {
        let call = Call::parse(target).ok()?;
        self.id_for(&call.url.key())
    }

    /// The endpoint `key` (`http://host:port`), added if new.
    pub fn id_for(&self, key: &str) -> Option<HttpId> {
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = map.get(key) {
            return Some(id);
        }
        let id = map.len();
        let slot = self.slots.get(id)?;
        let _ = slot.set(Endpoint {
            key: Bytes::from(key.to_string()),
        });
        map.insert(key.to_string(), id);
        Some(id)
    }

    pub fn get(&self, id: HttpId) -> Option<&Endpoint> {
        self.slots.get(id)?.get()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_per_scheme_host_and_port() {
        let e = Endpoints::default();
        let a = e.for_target(b"http://h:80/x?y=1").unwrap();
        assert_eq!(e.for_target(b"GET http://h/other").unwrap(), a);
        let b = e.for_target(b"https://h/x").unwrap();
        assert_ne!(a, b);
        assert_eq!(&e.get(b).unwrap().key[..], b"https://h:443");
        assert_eq!(e.for_target(b"smppserver/x"), None);
        assert_eq!(e.len(), 2);
    }
}
