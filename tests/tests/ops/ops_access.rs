//! Access to the ops port over real HTTP: a request for a host name the
//! relay does not serve is refused (DNS rebinding), and with a view token the
//! call history and the recordings need it — as a bearer token or as the
//! cookie a browser gets from `/?token=` — while `/metrics` stays open.

use std::net::SocketAddr;
use std::time::Duration;

use ptt_tests::client::granted;
use ptt_tests::{TestDirectory, TestRelay, opus};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

const VIEW: &str = "view-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef";
const ALLOWED: &str = "ops.district.example";
const GROUP: u32 = 100;
const PATIENCE: Duration = Duration::from_secs(5);

fn directory() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .guards([11, 12])
        .group(GROUP, [1, 11, 12])
}

async fn start(view_token: bool) -> anyhow::Result<TestRelay> {
    TestRelay::start_with(&directory(), move |config| {
        config.admin_token = Some(ADMIN.parse().expect("token"));
        if view_token {
            config.view_token = Some(VIEW.parse().expect("token"));
        }
        config.ops_allowed_hosts = vec![ALLOWED.to_owned()];
    })
    .await
}

/// A client that does not follow redirects (the `/?token=` answer is one).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PATIENCE)
        .build()
        .expect("http client")
}

/// GET `path` with the given extra headers; status, headers and body.
async fn get(
    ops: SocketAddr,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> anyhow::Result<(StatusCode, HeaderMap, String)> {
    let mut request = http().get(format!("http://{ops}{path}"));
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    // An event stream never ends: its status and headers are enough.
    let body = if path == "/api/v1/live" && status == StatusCode::OK {
        String::new()
    } else {
        response.text().await?
    };
    Ok((status, headers, body))
}

fn json_error(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    value["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_host_is_refused() -> anyhow::Result<()> {
    let relay = start(false).await?;
    let port = relay.ops.port();
    for path in [
        "/metrics",
        "/api/v1/bursts",
        "/",
        "/api/v1/admin/terminals/disabled",
    ] {
        for host in [
            "evil.example".to_owned(),
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
            format!("{ALLOWED}.evil.example"),
        ] {
            let (status, headers, body) = get(relay.ops, path, &[(header::HOST, &host)]).await?;
            assert_eq!(
                status,
                StatusCode::MISDIRECTED_REQUEST,
                "{host}{path}: {body}"
            );
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()?
                    .starts_with("application/json")
            );
            assert!(json_error(&body).contains("ops-allowed-hosts"), "{body}");
        }
    }
    // Addresses, localhost and the configured name are served.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        ALLOWED.to_owned(),
        format!("OPS.District.Example:{port}"),
    ] {
        let (status, _, body) = get(relay.ops, "/api/v1/bursts", &[(header::HOST, &host)]).await?;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    // Without a view token, the history is open as before.
    let (status, _, _) = get(relay.ops, "/api/v1/groups", &[]).await?;
    assert_eq!(status, StatusCode::OK);
    relay.stop().await?;
    Ok(())
}

/// The recording URL of the first burst of [`GROUP`], read with `auth`.
async fn recording_url(ops: SocketAddr, auth: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, _, body) = get(
            ops,
            &format!("/api/v1/bursts?group={GROUP}"),
            &[(header::AUTHORIZATION, auth)],
        )
        .await?;
        anyhow::ensure!(status == StatusCode::OK, "{status}: {body}");
        let value: Value = serde_json::from_str(&body)?;
        if let Some(url) = value["bursts"][0]["recording"].as_str() {
            // The file is finished after the tail grace.
            let (status, _, _) = get(ops, url, &[(header::AUTHORIZATION, auth)]).await?;
            if status == StatusCode::OK {
                return Ok(url.to_owned());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no recording: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_token_guards_history_and_recordings() -> anyhow::Result<()> {
    let relay = start(true).await?;
    let ops = relay.ops;
    let mut clients = relay.connect_all([11, 12]).await;
    let burst = granted(&clients[0].press(GROUP).await?).expect("granted");
    for seq in 0..5 {
        clients[0].send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    clients[0].release(GROUP).await?;

    let view_bearer = format!("Bearer {VIEW}");
    let admin_bearer = format!("Bearer {ADMIN}");
    let recording = recording_url(ops, &view_bearer).await?;
    let guarded = [
        "/api/v1/bursts",
        recording.as_str(),
        "/api/v1/groups",
        "/api/v1/terminals",
        "/api/v1/alerts",
        "/api/v1/emergencies",
        "/",
        "/api/v1/live",
        "/console",
        "/console/console.js",
        "/api/v1/console",
        "/no/such/page",
    ];

    // Without the token, or with a wrong one: 401 in JSON, nothing else.
    for path in guarded {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789abc"),
            Some("Basic dmlldzp2aWV3"),
        ] {
            let headers: Vec<_> = auth
                .map(|a| (header::AUTHORIZATION, a))
                .into_iter()
                .collect();
            let (status, headers, body) = get(ops, path, &headers).await?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}: {body}");
            assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{path}");
            assert!(json_error(&body).contains("view token"), "{path}: {body}");
        }
    }
    // With the view or the admin token as a bearer: served.
    for auth in [&view_bearer, &admin_bearer] {
        for path in ["/api/v1/bursts", recording.as_str()] {
            let (status, headers, body) =
                get(ops, path, &[(header::AUTHORIZATION, auth.as_str())]).await?;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            if path == recording {
                assert_eq!(headers[header::CONTENT_TYPE], "audio/ogg");
            }
        }
    }
    // Prometheus scrapes without a token.
    let (status, _, body) = get(ops, "/metrics", &[]).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("pttd_"), "{body}");

    // A browser opens /?token= once: it gets the cookie and goes back to /.
    let (status, _, body) = get(ops, "/?token=wrong-token-0123456789abc", &[]).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    for token in [VIEW, ADMIN] {
        let (status, headers, _) = get(ops, &format!("/?token={token}"), &[]).await?;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/");
        let set_cookie = headers[header::SET_COOKIE].to_str()?.to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        assert!(!set_cookie.contains(ADMIN), "the admin token in a cookie");
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        assert!(cookie.starts_with("pttd_view="), "{cookie}");
        for path in [
            "/api/v1/bursts",
            recording.as_str(),
            "/",
            "/api/v1/live",
            "/console",
            "/api/v1/console",
        ] {
            let with_others = format!("theme=dark; {cookie}");
            let (status, _, body) = get(ops, path, &[(header::COOKIE, &with_others)]).await?;
            assert_eq!(status, StatusCode::OK, "{path} with the cookie: {body}");
        }
        // A forged cookie is no cookie.
        let forged = format!("{}0", &cookie[..cookie.len() - 1]);
        let (status, _, _) = get(ops, &recording, &[(header::COOKIE, &forged)]).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The view token reads; it does not administer.
    let (status, _, _) = get(
        ops,
        "/api/v1/admin/terminals/disabled",
        &[(header::AUTHORIZATION, &view_bearer)],
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(
        ops,
        "/api/v1/admin/terminals/disabled",
        &[(header::AUTHORIZATION, &admin_bearer)],
    )
    .await?;
    assert_eq!(status, StatusCode::OK);

    for client in clients {
        client.close().await;
    }
    relay.stop().await?;
    Ok(())
}
