//! Ops access: who may reach the operations port and what they may do there —
//! `ops-listen`, `admin-token` (or `admin-token-file`), `view-token`,
//! `ops-allowed-hosts` and the port's limits (`ops-max-connections`, `ops-header-timeout`,
//! `ops-idle-timeout`, `ops-token-failures-per-minute[-total]`) — with reading the admin
//! token file and the rules these settings must meet.

use ptt_directory::toml_text::Location;
use ptt_ops::{AdminTokens, OpsLimits};

use super::error::{ConfigError, invalid};
use super::settings::Config;

impl Config {
    /// The ops port's part of [`Config::validate`].
    pub(super) fn validate_ops_access(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.admin_token
            && !token.is_empty()
            && !token.well_formed()
        {
            return invalid(
                "admin-token",
                "must be at least 16 characters without surrounding spaces",
            );
        }
        if self.admin_token.is_some() && self.admin_token_file.is_some() {
            return invalid(
                "admin-token-file",
                "give admin-token or admin-token-file, not both",
            );
        }
        // Unlike the admin token, an empty view token is refused: a blank variable must not
        // silently open the recordings to everyone who reaches the port.
        if self.view_token.as_ref().is_some_and(|t| !t.well_formed()) {
            return invalid(
                "view-token",
                "must be at least 16 characters without surrounding spaces (leave it unset for an open ops port)",
            );
        }
        if let Some(host) = self.ops_allowed_hosts.iter().find(|h| {
            h.is_empty() || h.contains(|c: char| c == ':' || c == '/' || c.is_whitespace())
        }) {
            return invalid(
                "ops-allowed-hosts",
                &format!("{host:?} is not a host name (write names without port or scheme)"),
            );
        }
        if self.ops_max_connections == 0 {
            return invalid("ops-max-connections", "must be at least 1");
        }
        if self.ops_header_timeout.is_zero() {
            return invalid("ops-header-timeout", "must be longer than 0");
        }
        if self.ops_idle_timeout.is_zero() {
            return invalid("ops-idle-timeout", "must be longer than 0");
        }
        Ok(())
    }

    /// The ops port's limits, as the ops server takes them.
    pub fn ops_limits(&self) -> OpsLimits {
        OpsLimits {
            header_timeout: self.ops_header_timeout,
            idle_timeout: self.ops_idle_timeout,
            max_connections: self.ops_max_connections,
            token_failures_per_minute: self.ops_token_failures_per_minute,
            token_failures_per_minute_total: self.ops_token_failures_per_minute_total,
        }
    }

    /// Reads `admin-token-file` (one token per operator, see [`AdminTokens::parse_file`])
    /// into `admin-token` (then forgets the path, so the two are
    /// not both set). Called by [`Cli::load`](super::settings::Cli::load); embedders
    /// building a [`Config`] in code and using the file call it before `Relay::load`.
    pub fn read_token_files(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(());
        };
        if self.admin_token.is_some() {
            return invalid(
                "admin-token-file",
                "give admin-token or admin-token-file, not both",
            );
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let tokens = AdminTokens::parse_file(&text).map_err(|e| ConfigError::InvalidAt {
            location: Location {
                origin: path.display().to_string(),
                line: e.line,
                column: 1,
            },
            field: "admin-token-file",
            reason: e.reason,
        })?;
        self.admin_token = Some(tokens);
        self.admin_token_file = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ptt_ops::AdminTokens;

    use super::super::settings::Cli;
    use super::*;

    fn load(args: &[&str]) -> Result<Cli, ConfigError> {
        Cli::try_load_from(std::iter::once("pttd").chain(args.iter().copied()))
    }

    #[test]
    fn admin_token_is_checked_in_constant_time_and_never_shown() {
        let token: AdminTokens = "0123456789abcdef-secret".parse().unwrap();
        assert!(token.identify(b"0123456789abcdef-secret").is_some());
        assert!(token.identify(b"0123456789abcdef-secreT").is_none());
        assert!(token.identify(b"0123456789abcdef").is_none());
        assert!(token.identify(b"").is_none());
        let config = Config {
            admin_token: Some(token),
            ..Config::default()
        };
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("secret"), "{config:?}");

        assert!(
            load(&["--admin-token", ""])
                .unwrap()
                .config
                .admin_token
                .unwrap()
                .is_empty()
        );
        let cli = load(&["--admin-token", "short"]).unwrap_err();
        assert!(
            matches!(
                cli,
                ConfigError::Invalid {
                    field: "admin-token",
                    ..
                }
            ),
            "{cli}"
        );
        let from_file =
            Config::from_toml_str("admin-token = \"abcdefghijklmnopqrstuvwxyz\"\n", "f").unwrap();
        assert!(
            from_file
                .admin_token
                .unwrap()
                .identify(b"abcdefghijklmnopqrstuvwxyz")
                .is_some()
        );
    }

    #[test]
    fn a_token_file_names_each_operator_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-tokens");
        std::fs::write(
            &file,
            "# duty officers\nduty officer Li  li-token-0123456789\n\nWang wang-token-0123456789\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let tokens = load(&["--admin-token-file", path])
            .unwrap()
            .config
            .admin_token
            .expect("read from the file");
        assert_eq!(
            tokens.identify(b"li-token-0123456789"),
            Some(Some("duty officer Li"))
        );
        assert_eq!(
            tokens.identify(b"wang-token-0123456789"),
            Some(Some("Wang"))
        );
        assert_eq!(tokens.identify(b"li-token-012345678"), None);
        assert!(!format!("{tokens:?}").contains("token-0"), "{tokens:?}");

        std::fs::write(&file, "Li li-token-0123456789\nWang short\n").unwrap();
        let error = load(&["--admin-token-file", path]).unwrap_err();
        let shown = error.to_string();
        assert!(shown.starts_with(&format!("{path}:2:1")), "{shown}");
        assert!(
            shown.contains("admin-token-file") && shown.contains("16"),
            "{shown}"
        );
    }

    #[test]
    fn the_admin_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-token");
        std::fs::write(&file, "abcdefghijklmnop-from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let config = load(&["--admin-token-file", path]).unwrap().config;
        let token = config.admin_token.expect("read from the file");
        assert!(token.identify(b"abcdefghijklmnop-from-file").is_some());
        assert!(config.admin_token_file.is_none());

        let both = load(&[
            "--admin-token-file",
            path,
            "--admin-token",
            "x".repeat(20).as_str(),
        ]);
        assert!(
            matches!(
                both,
                Err(ConfigError::Invalid {
                    field: "admin-token-file",
                    ..
                })
            ),
            "{both:?}"
        );
        assert!(matches!(
            load(&["--admin-token-file", "/nonexistent/admin-token"]),
            Err(ConfigError::Read { .. })
        ));
        std::fs::write(&file, "short\n").unwrap();
        assert!(matches!(
            load(&["--admin-token-file", path]),
            Err(ConfigError::InvalidAt {
                field: "admin-token-file",
                ..
            })
        ));
    }

    #[test]
    fn view_token_and_allowed_hosts() {
        let config = load(&[
            "--view-token",
            "viewer-0123456789-secret",
            "--ops-allowed-hosts",
            "ops.example.org,Dashboard.local",
        ])
        .unwrap()
        .config;
        assert!(
            config
                .view_token
                .unwrap()
                .matches(b"viewer-0123456789-secret")
        );
        assert_eq!(
            config.ops_allowed_hosts,
            ["ops.example.org", "Dashboard.local"]
        );
        assert!(
            !format!(
                "{:?}",
                load(&["--view-token", "viewer-0123456789-secret"]).unwrap()
            )
            .contains("secret")
        );
        for bad in ["", "short", " viewer-0123456789-secret "] {
            let err = load(&["--view-token", bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        field: "view-token",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
        for bad in ["ops.example.org:7780", "http://ops", ""] {
            let err = Config {
                ops_allowed_hosts: vec![bad.to_owned()],
                ..Config::default()
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains("ops-allowed-hosts"), "{err}");
        }
        let from_file = Config::from_toml_str(
            "view-token = \"abcdefghijklmnopqrstuvwxyz\"\nops-allowed-hosts = [\"ops.lan\"]\n",
            "f",
        )
        .unwrap();
        assert_eq!(from_file.ops_allowed_hosts, ["ops.lan"]);
        assert!(from_file.view_token.is_some());
    }

    #[test]
    fn ops_limits_have_defaults_and_are_checked() {
        let limits = load(&[]).unwrap().config.ops_limits();
        assert_eq!(limits, OpsLimits::default());
        let config = load(&[
            "--ops-max-connections",
            "8",
            "--ops-header-timeout",
            "2s",
            "--ops-idle-timeout",
            "1m",
            "--ops-token-failures-per-minute",
            "3",
            "--ops-token-failures-per-minute-total",
            "0",
        ])
        .unwrap()
        .config;
        assert_eq!(
            config.ops_limits(),
            OpsLimits {
                header_timeout: std::time::Duration::from_secs(2),
                idle_timeout: std::time::Duration::from_secs(60),
                max_connections: 8,
                token_failures_per_minute: 3,
                token_failures_per_minute_total: 0,
            }
        );
        for (flag, value) in [
            ("--ops-max-connections", "0"),
            ("--ops-header-timeout", "0s"),
            ("--ops-idle-timeout", "0s"),
        ] {
            let err = load(&[flag, value]).unwrap_err();
            assert!(err.to_string().contains(&flag[2..]), "{flag}: {err}");
        }
        let from_file =
            Config::from_toml_str("ops-idle-timeout = \"90s\"\nops-max-connections = 9\n", "f")
                .unwrap();
        assert_eq!(from_file.ops_limits().max_connections, 9);
    }
}
