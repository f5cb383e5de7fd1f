//! The cluster: `cluster` (the NATS server relays share), `relay-id` (this relay's name
//! among them) and `site-trunking` (what it does while NATS is away), and the rules these
//! settings must meet.

use super::error::{ConfigError, invalid};
use super::settings::Config;

/// Where and as whom a relay joins its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterJoin {
    /// The NATS server's URL.
    pub url: String,
    /// This relay's id.
    pub relay: String,
    /// Whether the relay serves its own terminals alone while NATS is away.
    pub site_trunking: bool,
}

impl Config {
    /// The cluster part of [`Config::validate`].
    pub(super) fn validate_cluster(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.cluster else {
            if self.relay_id.is_some() {
                return invalid("relay-id", "is only used with cluster");
            }
            if !self.site_trunking {
                return invalid("site-trunking", "is only used with cluster");
            }
            return Ok(());
        };
        let scheme_ok = |server: &str| {
            ["nats://", "tls://"].iter().any(|scheme| {
                server
                    .strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty())
            })
        };
        if !url.split(',').map(str::trim).all(scheme_ok) {
            return invalid(
                "cluster",
                "must be nats:// or tls:// URLs with a host, separated by commas",
            );
        }
        let Some(relay) = &self.relay_id else {
            return invalid("relay-id", "is needed with cluster: each relay's own name");
        };
        let usable = !relay.is_empty()
            && relay.len() <= 64
            && relay
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            return invalid(
                "relay-id",
                "must be 1 to 64 letters, digits, '-' or '_' (it names NATS subjects)",
            );
        }
        Ok(())
    }

    /// Where to join the cluster, if the relay is in one (after [`Config::validate`]).
    pub fn cluster_join(&self) -> Option<ClusterJoin> {
        Some(ClusterJoin {
            url: self.cluster.clone()?,
            relay: self.relay_id.clone()?,
            site_trunking: self.site_trunking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(cluster: Option<&str>, relay: Option<&str>) -> Config {
        Config {
            cluster: cluster.map(str::to_owned),
            relay_id: relay.map(str::to_owned),
            ..Config::default()
        }
    }

    fn field_of(config: &Config) -> &'static str {
        match config.validate_cluster() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{config:?}: {other:?}"),
        }
    }

    #[test]
    fn alone_by_default_and_a_cluster_needs_a_url_and_a_relay_id() {
        assert_eq!(Config::default().cluster_join(), None);
        Config::default().validate_cluster().unwrap();
        let joined = with(Some("nats://127.0.0.1:4222"), Some("relay-a"));
        joined.validate_cluster().unwrap();
        assert_eq!(
            joined.cluster_join(),
            Some(ClusterJoin {
                url: "nats://127.0.0.1:4222".to_owned(),
                relay: "relay-a".to_owned(),
                site_trunking: true,
            })
        );
        assert_eq!(
            field_of(&with(Some("nats://127.0.0.1:4222"), None)),
            "relay-id"
        );
        assert_eq!(
            field_of(&with(Some("http://127.0.0.1"), Some("a"))),
            "cluster"
        );
        assert_eq!(field_of(&with(Some("nats://"), Some("a"))), "cluster");
        with(Some("nats://n1:4222,nats://n2:4222"), Some("a"))
            .validate_cluster()
            .unwrap();
        assert_eq!(field_of(&with(Some("nats://n1,n2"), Some("a"))), "cluster");
        assert_eq!(field_of(&with(Some("nats://h"), Some("a.b"))), "relay-id");
        assert_eq!(field_of(&with(None, Some("a"))), "relay-id");
        let alone_without_trunking = Config {
            site_trunking: false,
            ..Config::default()
        };
        assert_eq!(field_of(&alone_without_trunking), "site-trunking");
    }

    #[test]
    fn the_file_names_the_line_of_a_bad_cluster_setting() {
        let text = "# cluster\ncluster = 4222\n";
        match Config::from_toml_str(text, "pttd.toml") {
            Err(ConfigError::Parse {
                location, field, ..
            }) => {
                assert_eq!(location.line, 2);
                assert_eq!(field.as_deref(), Some("cluster"));
            }
            other => panic!("{other:?}"),
        }
    }
}
