//! Who may use the ops port: the rules the guard layer in front of every route applies
//! (see [`crate::guard`] for the layer itself).
//!
//! 1. **Host check.** A request whose `Host` is not an IP literal, `localhost` or a name
//!    of `ops-allowed-hosts` is refused with 421. A web page an operator opens elsewhere
//!    could otherwise point its own name at 127.0.0.1 (DNS rebinding) and read the ops
//!    port from the operator's browser as if it were its own site.
//! 2. **View token.** With `view-token` set, every route but `/metrics` (scraped by
//!    Prometheus, which holds nothing private) needs `Authorization: Bearer <view or admin
//!    token>` or the `pttd_view` cookie. A browser gets the cookie by opening
//!    `/?token=<token>` once: the answer sets it (HttpOnly, SameSite=Strict, this session of
//!    the browser) and sends the browser back to `/`, so the token leaves the address bar
//!    and the history. Without `view-token` the port stays open, as its default address is
//!    loopback.
//!
//! Refusals are answered in JSON (`{"error": "..."}`) and logged at most once a minute
//! each, with the count of those not logged: a scanner hammering the port costs no disk.

use std::net::{IpAddr, Ipv6Addr};

use crate::log_throttle::LogThrottle;
use crate::token::ViewToken;

/// The ops port's access rules, from the configuration.
#[derive(Debug)]
pub struct OpsAccess {
    pub(super) view_token: Option<ViewToken>,
    /// The view token as the cookie carries it (hex, as cookie values are restricted).
    pub(super) view_cookie: Option<String>,
    /// `ops-allowed-hosts`, lower case, without a trailing dot.
    allowed_hosts: Vec<String>,
    /// Refused requests (wrong host, missing or wrong view token), for the warning.
    pub(super) refused: LogThrottle,
    /// Requests to the admin API without the right admin token, for the warning.
    pub(super) admin_refused: LogThrottle,
}

impl OpsAccess {
    /// The rules of `view-token` and `ops-allowed-hosts` (validated by the relay's config).
    pub fn new(view_token: Option<ViewToken>, allowed_hosts: &[String]) -> Self {
        Self {
            view_cookie: view_token.as_ref().map(|t| hex(t.expose().as_bytes())),
            view_token,
            allowed_hosts: allowed_hosts.iter().map(|h| normal_host(h)).collect(),
            refused: LogThrottle::default(),
            admin_refused: LogThrottle::default(),
        }
    }

    /// Whether the ops port answers to `host` (a `Host` header value, port included).
    pub(super) fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // `[v6]` or `[v6]:port`: only an address can be bracketed.
            Some(rest) => {
                return rest
                    .split_once(']')
                    .is_some_and(|(ip, _)| ip.parse::<Ipv6Addr>().is_ok());
            }
            None => match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            },
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normal_host(name);
        !name.is_empty() && (name == "localhost" || self.allowed_hosts.contains(&name))
    }
}

/// A host name as compared: lower case, without the trailing dot of a fully qualified name.
fn normal_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(hosts: &[&str]) -> OpsAccess {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        OpsAccess::new(None, &hosts)
    }

    #[test]
    fn hosts_served() {
        let access = access(&["Ops.District.example"]);
        for good in [
            "127.0.0.1",
            "127.0.0.1:7780",
            "10.1.2.3:80",
            "[::1]:7780",
            "[::1]",
            "localhost",
            "LOCALHOST:7780",
            "localhost.:7780",
            "ops.district.example",
            "ops.district.example.:7780",
        ] {
            assert!(access.host_allowed(good), "{good}");
        }
        for bad in [
            "evil.example",
            "evil.example:7780",
            "localhost.evil.example",
            "ops.district.example.evil",
            "[evil.example]:80",
            "",
            ":7780",
            "127.0.0.1.evil.example",
        ] {
            assert!(!access.host_allowed(bad), "{bad}");
        }
    }
}
