//! The ops port as the API tests reach it: an HTTP client for its JSON API
//! and `/metrics`, and the district the tests run the relay on.

#![allow(dead_code)] // each test binary uses a different subset

pub(crate) mod exposition;

use ptt_tests::{PATIENCE, TestDirectory, TestRelay};
use serde_json::Value;

use exposition::{Sample, parse_exposition};

/// Guards 1..=4 (4 stays offline), dispatcher 9; group 10 of 1, 2, 3 and
/// the dispatcher; group 11 of 1 and 4.
pub(crate) fn district() -> TestDirectory {
    TestDirectory::new()
        .guards(1..=4)
        .dispatcher(9)
        .group(10, [1, 2, 3, 9])
        .group(11, [1, 4])
}

/// An HTTP client for the ops port of one relay.
pub(crate) struct Ops {
    /// The client, with a timeout of [`PATIENCE`].
    pub(crate) http: reqwest::Client,
    /// `http://` and the ops port's address.
    pub(crate) base: String,
}

impl Ops {
    /// A client of `relay`'s ops port, giving up after [`PATIENCE`].
    pub(crate) fn new(relay: &TestRelay) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .expect("http client"),
            base: format!("http://{}", relay.ops),
        }
    }

    /// GET `path`, whatever the status.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET expecting 200 and JSON.
    pub(crate) async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// GET expecting `status` and a JSON error naming `mentions`.
    pub(crate) async fn refused(&self, path: &str, status: u16, mentions: &str) {
        let response = self.get(path).await;
        assert_eq!(response.status(), status, "GET {path}");
        let body: Value = response.json().await.expect("JSON error body");
        let error = body["error"].as_str().expect("error text");
        assert!(error.contains(mentions), "GET {path}: {error:?}");
    }

    /// GET `/metrics` expecting 200 and the text format, parsed.
    pub(crate) async fn metrics(&self) -> Vec<Sample> {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        parse_exposition(&response.text().await.expect("body"))
    }
}
