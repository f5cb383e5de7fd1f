//! The admin API of the ops port over real HTTP needs its token: refused
//! when none is configured, unauthorised without the right one; and with it,
//! unknown ids and bad bodies are refused as JSON errors and nothing is
//! logged.

use crate::admin_port;

use std::net::SocketAddr;

use admin_port::{TOKEN, admin, call, directory, start};
use ptt_calllog::CallLogReader;
use ptt_tests::{Client, TestRelay};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends an admin request with the token and a raw body, with or without a
/// `Content-Type`.
async fn call_raw(
    ops: SocketAddr,
    method: reqwest::Method,
    path: &str,
    body: &'static str,
    content_type: Option<&str>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{ops}{path}"))
        .bearer_auth(TOKEN)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_token() -> anyhow::Result<()> {
    use reqwest::Method;
    // Not configured: refused for everybody, even with a token.
    let relay = TestRelay::start(&directory()).await?;
    let path = "/api/v1/admin/terminals/11/disable";
    let (status, body) = call(relay.ops, Method::POST, path, Some(TOKEN), None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"],
        "admin API disabled: set admin-token or admin-token-file"
    );
    relay.stop().await?;

    let relay = start(None).await?;
    for token in [None, Some("wrong-token-0123456789abc"), Some("")] {
        let (status, body) = call(relay.ops, Method::POST, path, token, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    let (status, _) = call(
        relay.ops,
        Method::GET,
        "/api/v1/admin/terminals/disabled",
        None,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // None of that disabled anything.
    let guard = Client::connect(relay.addr, &relay.cert, 11).await?;
    assert_eq!(
        admin(relay.ops, Method::GET, "/api/v1/admin/terminals/disabled").await?,
        json!({"disabled": []})
    );
    // With the token: unknown ids and bad bodies are refused, nothing logged.
    for (method, path, body, expected) in [
        (
            Method::POST,
            "/api/v1/admin/terminals/999/disable",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/admin/groups/999/emergency/clear",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/v1/admin/groups/100/members/13",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"listen": false, "talk": false})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"listen": true, "shout": true})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"talk": "yes"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/eleven/disable",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/admin/groups/100/members/-1",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"by": ""})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"by": "x".repeat(65)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"who": "me"})),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = call(relay.ops, method, path, Some(TOKEN), body).await?;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(
            answer["error"].is_string(),
            "{path}: not a JSON error: {answer}"
        );
        if path.contains("eleven") || path.ends_with("-1") {
            let said = answer["error"].as_str().unwrap_or_default();
            assert!(
                said.contains(path) && said.contains("whole numbers"),
                "{path}: says which path and why, not the framework's words: {said}"
            );
        }
    }
    // Bodies without the JSON content type, or not JSON at all.
    for (method, path, body, content_type) in [
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            "{}",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            "{\"talk\": ",
            Some("application/json"),
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            "{\"by\": \"me\"}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            "by=me",
            Some("application/x-www-form-urlencoded"),
        ),
    ] {
        let (status, answer) = call_raw(relay.ops, method, path, body, content_type).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            answer["error"].is_string(),
            "{path}: not a JSON error: {answer}"
        );
    }
    guard.close().await;
    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    assert!(reader.admin_actions()?.is_empty());
    Ok(())
}

/// With `admin-token-file` naming one token per operator, the audit trail
/// names the token's operator whatever the request claims, and a token of
/// no line is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_named_token_is_recorded_as_its_operator() -> anyhow::Result<()> {
    use reqwest::Method;
    const LI: &str = "li-admin-token-0123456789";
    const WANG: &str = "wang-admin-token-0123456789";
    let data = tempfile::tempdir()?;
    let file = data.path().join("admin-tokens");
    std::fs::write(&file, format!("duty officer Li {LI}\nWang {WANG}\n"))?;
    let relay = TestRelay::start_with(&directory(), move |config| {
        config.admin_token_file = Some(file);
        config.read_token_files().expect("the token file reads");
    })
    .await?;
    let path = format!(
        "/api/v1/admin/groups/{}/members/{}",
        admin_port::GROUP,
        admin_port::OUTSIDER
    );
    let claims_other = Some(json!({"by": "someone else"}));
    let (status, body) = call(relay.ops, Method::PUT, &path, Some(LI), claims_other).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(relay.ops, Method::DELETE, &path, Some(WANG), None).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(relay.ops, Method::DELETE, &path, Some(TOKEN), None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not a token of the file");

    let (status, history) = call(
        relay.ops,
        Method::GET,
        &format!("/api/v1/regroups?group={}", admin_port::GROUP),
        Some(WANG),
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{history}");
    let by: Vec<&str> = history["regroups"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["by"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(by, ["Wang", "duty officer Li"], "newest first: {history}");
    relay.stop().await?;
    Ok(())
}
