//! The admin API of the ops port as its tests reach it: the token, the
//! directory and a relay started with it, and requests with or without the
//! token.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;

use ptt_tests::{TestDirectory, TestRelay};
use reqwest::StatusCode;
use serde_json::Value;

/// The admin token the relay of [`start`] is configured with.
pub(crate) const TOKEN: &str = "test-admin-token-0123456789";
/// The group the admin acts on.
pub(crate) const GROUP: u32 = 100;
/// The dispatcher, a member of [`GROUP`].
pub(crate) const DISPATCHER: u32 = 1;
/// Guards 11 and 12 are members of [`GROUP`]; 13 is not.
pub(crate) const OUTSIDER: u32 = 13;

/// The dispatcher and guards 11, 12 and [`OUTSIDER`]; [`GROUP`] of the
/// dispatcher, 11 and 12; group 200 of the three guards.
pub(crate) fn directory() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(DISPATCHER)
        .guards([11, 12, OUTSIDER])
        .group(GROUP, [DISPATCHER, 11, 12])
        .group(200, [11, 12, OUTSIDER])
}

/// A relay on [`directory`] with the admin API on ([`TOKEN`]), on the data
/// directory `data` if given (to restart on the same data).
pub(crate) async fn start(data: Option<&tempfile::TempDir>) -> anyhow::Result<TestRelay> {
    let data = data.map(|d| d.path().to_owned());
    TestRelay::start_with(&directory(), move |config| {
        config.admin_token = Some(TOKEN.parse().expect("token"));
        if let Some(data) = data {
            config.data_dir = data;
        }
    })
    .await
}

/// Sends an admin request with `token` (none: no `Authorization` header).
pub(crate) async fn call(
    ops: SocketAddr,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new().request(method, format!("http://{ops}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// Sends an admin request with the token and no body, expecting 200; the
/// JSON answer.
pub(crate) async fn admin(
    ops: SocketAddr,
    method: reqwest::Method,
    path: &str,
) -> anyhow::Result<Value> {
    let (status, body) = call(ops, method, path, Some(TOKEN), None).await?;
    anyhow::ensure!(status == StatusCode::OK, "{path}: {status} {body}");
    Ok(body)
}
