//! Loading: the TOML file, then `PTTD_*` variables and flags over it ([`Cli::load`]), with
//! file errors reported as `file:line:column: message` naming the field.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use ptt_directory::toml_text::{Location, TomlError};

use super::error::ConfigError;
use super::settings::{Cli, Config};

/// The arg ids (= field names) that [`Config::merge_cli`] copies; a test checks it is complete.
#[cfg(test)]
const MERGED_FIELDS: &[&str] = &[
    "data_dir",
    "listen",
    "ops_listen",
    "console_listen",
    "console_tiles",
    "directory",
    "cert",
    "key",
    "log",
    "max_connections",
    "hello_timeout",
    "max_unauthenticated",
    "max_unauthenticated_per_address",
    "idle_timeout",
    "keep_alive",
    "datagram_queue_ms",
    "shards",
    "pin_shards",
    "log_queue",
    "auth_failures_per_minute",
    "auth_global_failures_per_minute",
    "auth_failure_delay",
    "auth_hash_workers",
    "auth_hash_memory_mib",
    "auth_hash_queue",
    "auth_hash_max_wait",
    "resume_ttl",
    "admin_token",
    "admin_token_file",
    "view_token",
    "ops_allowed_hosts",
    "ops_max_connections",
    "ops_header_timeout",
    "ops_idle_timeout",
    "ops_token_failures_per_minute",
    "ops_token_failures_per_minute_total",
    "record",
    "recordings_dir",
    "recording_retention_days",
    "recording_max_mib",
    "recording_queue",
    "backup_radius_m",
    "private_calls",
    "private_call_answer_timeout",
    "cluster",
    "relay_id",
    "site_trunking",
    "rate_floor",
    "rate_membership",
    "rate_location",
    "rate_status",
    "rate_alert",
    "rate_alert_ack",
    "rate_private_call",
    "rate_quality",
    "rate_other",
    "rate_refusals_tolerated",
    "rate_location_forwarded",
];

impl Cli {
    /// Parses the process arguments and merges `--config FILE`, so `main` is one line.
    ///
    /// `--help`, `--version` and malformed flags print and exit the process as clap does;
    /// a bad config file is returned so `main` can report it and exit non-zero.
    pub fn load() -> Result<Cli, ConfigError> {
        match Cli::try_load_from(std::env::args_os()) {
            Err(ConfigError::Cli(e)) => e.exit(),
            other => other,
        }
    }

    /// Like [`Cli::load`] but from the given arguments (first one is the program name) and
    /// never exits; tests and embedders use it.
    pub fn try_load_from<I, T>(args: I) -> Result<Cli, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let mut file = None;
        if let Some(path) = cli.config.config.clone() {
            let text = read_config(&path)?;
            let mut merged = Config::from_toml_str(&text, &path.display().to_string())?;
            merged.config = Some(path.clone());
            merged.merge_cli(&cli.config, &matches);
            cli.config = merged;
            file = Some((path, text));
        }
        let checked = cli
            .config
            .read_token_files()
            .and_then(|()| cli.config.validate());
        match (checked, &file) {
            // A value from the file is refused where the file sets it; one
            // from a flag or variable (merged over the file) as it is.
            (Err(ConfigError::Invalid { field, reason }), Some((path, text)))
                if !set_on_command_line(&matches, field) =>
            {
                Err(match locate_key(text, field, &path.display().to_string()) {
                    Some(location) => ConfigError::InvalidAt {
                        location,
                        field,
                        reason,
                    },
                    None => ConfigError::Invalid { field, reason },
                })
            }
            (checked, _) => checked.map(|()| cli),
        }
    }
}

/// The text of the config file at `path`.
fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether the flag of `field` (as in the file: `keep-alive`) was given on
/// the command line or by its `PTTD_*` variable.
fn set_on_command_line(matches: &ArgMatches, field: &str) -> bool {
    let id = field.replace('-', "_");
    matches!(
        matches.try_get_raw(&id).ok().and(matches.value_source(&id)),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Where `text` (a config file named `origin`) sets top-level `key`, if it does.
fn locate_key(text: &str, key: &str, origin: &str) -> Option<Location> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            return None;
        }
        let sets = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if sets {
            return Some(Location::from_offset(
                origin,
                text,
                offset + (line.len() - trimmed.len()),
            ));
        }
        offset += line.len();
    }
    None
}

impl Config {
    /// Reads a TOML config file; unset fields keep their defaults. Does not validate.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Config::from_toml_str(&read_config(path)?, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors (usually the file path). Does not validate.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let err = TomlError::new(&e, text, origin);
            ConfigError::Parse {
                location: err.location,
                field: err.field,
                message: err.message,
            }
        })
    }

    /// Overwrites every field that was set on the command line (or by environment variable).
    fn merge_cli(&mut self, cli: &Config, matches: &ArgMatches) {
        let from_cli = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                $( if from_cli(stringify!($field)) { self.$field = cli.$field.clone(); } )*
            };
        }
        merge!(
            data_dir,
            listen,
            ops_listen,
            console_listen,
            console_tiles,
            directory,
            cert,
            key,
            log,
            max_connections,
            hello_timeout,
            max_unauthenticated,
            max_unauthenticated_per_address,
            idle_timeout,
            keep_alive,
            datagram_queue_ms,
            shards,
            pin_shards,
            log_queue,
            auth_failures_per_minute,
            auth_global_failures_per_minute,
            auth_failure_delay,
            auth_hash_workers,
            auth_hash_memory_mib,
            auth_hash_queue,
            auth_hash_max_wait,
            resume_ttl,
            admin_token,
            admin_token_file,
            view_token,
            ops_allowed_hosts,
            ops_max_connections,
            ops_header_timeout,
            ops_idle_timeout,
            ops_token_failures_per_minute,
            ops_token_failures_per_minute_total,
            record,
            recordings_dir,
            recording_retention_days,
            recording_max_mib,
            recording_queue,
            backup_radius_m,
            private_calls,
            private_call_answer_timeout,
            cluster,
            relay_id,
            site_trunking,
            rate_floor,
            rate_membership,
            rate_location,
            rate_status,
            rate_alert,
            rate_alert_ack,
            rate_private_call,
            rate_quality,
            rate_other,
            rate_refusals_tolerated,
            rate_location_forwarded,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::settings::Command;
    use super::*;

    fn load(args: &[&str]) -> Result<Cli, ConfigError> {
        Cli::try_load_from(std::iter::once("pttd").chain(args.iter().copied()))
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("pttd.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_example_deploy_config_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/pttd.toml");
        let config = Config::from_file(&example).unwrap();
        config.validate().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/pttd"));
        // The example documents the defaults for everything else.
        assert_eq!(config.idle_timeout, Config::default().idle_timeout);
        assert_eq!(config.keep_alive, Config::default().keep_alive);
    }

    #[test]
    fn clap_defaults_match_default_impl() {
        let cli = load(&[]).unwrap();
        // Compared as printed: `Config` is not `PartialEq` (secrets), and tokens print
        // redacted but still as `Some`/`None`.
        assert_eq!(
            format!("{:?}", cli.config),
            format!("{:?}", Config::default())
        );
        assert!(cli.command.is_none());
    }

    #[test]
    fn every_flag_is_merged() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "help" | "version") {
                continue;
            }
            assert!(
                MERGED_FIELDS.contains(&id),
                "{id} is not merged from the command line"
            );
        }
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\nidle-timeout = \"1m\"\n",
        );
        let p = path.to_str().unwrap();
        let cli = load(&["--config", p, "--log", "trace", "--max-connections", "7"]).unwrap();
        let c = cli.config;
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap()); // file over default
        assert_eq!(c.log, "trace"); // flag over file
        assert_eq!(c.max_connections, 7); // flag over default
        assert_eq!(c.idle_timeout, Duration::from_secs(60)); // file
        assert_eq!(c.ops_listen, Config::default().ops_listen); // default
        assert_eq!(c.config.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn flag_equal_to_default_still_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "log = \"debug\"\n");
        let cli = load(&["--config", path.to_str().unwrap(), "--log", "info"]).unwrap();
        assert_eq!(cli.config.log, "info");
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let text = "listen = \"127.0.0.1:1\"\n\nlisen = \"x\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("pttd.toml:3:1: unknown field `lisen`, expected one of"),
            "{shown}"
        );
        assert!(shown.contains("`listen`"), "{shown}");
    }

    #[test]
    fn bad_duration_names_field() {
        let text = "# comment\nkeep-alive = \"5 parsecs\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("pttd.toml:2:"), "{shown}");
        assert!(shown.contains("keep-alive"), "{shown}");
        assert!(shown.contains("5 parsecs"), "{shown}");
    }

    #[test]
    fn a_tile_url_the_console_cannot_use_names_its_line_and_why() {
        let text = "# map\nconsole-tiles = \"https://tiles.example.org/{z}/{x}.png\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("pttd.toml:2:"), "{shown}");
        assert!(shown.contains("{z}, {x} and {y}"), "{shown}");
        assert!(matches!(
            load(&["--console-tiles", "ftp://tiles.example.org/{z}/{x}/{y}"]),
            Err(ConfigError::Cli(_))
        ));
        let cli = load(&[
            "--console-tiles",
            "https://tiles.example.org/{z}/{x}/{y}.png",
        ])
        .unwrap();
        let tiles = cli.config.console_tiles.expect("tiles");
        assert_eq!(tiles.origin(), "https://tiles.example.org");
    }

    #[test]
    fn bad_type_and_bad_flag_duration() {
        let err = Config::from_toml_str("max-connections = \"many\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().starts_with("f.toml:1:"), "{err}");
        assert!(err.to_string().contains("max-connections"), "{err}");
        assert!(matches!(
            load(&["--idle-timeout", "soon"]),
            Err(ConfigError::Cli(_))
        ));
    }

    #[test]
    fn missing_file_and_invalid_combination() {
        assert!(matches!(
            load(&["--config", "/nonexistent/pttd.toml"]),
            Err(ConfigError::Read { .. })
        ));
        let err = load(&["--keep-alive", "40s"]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "keep-alive",
                    ..
                }
            ),
            "{err}"
        );
        assert!(load(&["--cert", "c.pem"]).is_err());
    }

    #[test]
    fn an_unusable_value_from_the_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pttd.toml");
        std::fs::write(
            &path,
            "# relay\nidle-timeout = \"10s\"\n  keep-alive = \"40s\"\n",
        )
        .unwrap();
        let config = path.display().to_string();
        let err = load(&["--config", &config]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::InvalidAt {
                    field: "keep-alive",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{config}:3:3: invalid `keep-alive`")),
            "{err}"
        );
        // The same value given as a flag over the file is the flag's.
        let err = load(&["--config", &config, "--keep-alive", "30s"]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        // A file that does not set the field leaves it unlocated.
        std::fs::write(&path, "idle-timeout = \"1s\"\n").unwrap();
        let err = load(&["--config", &config]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "keep-alive",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn gen_directory_subcommand() {
        let cli = load(&[
            "gen-directory",
            "--terminals",
            "10",
            "--groups",
            "3",
            "--out",
            "d.toml",
            "--secrets",
            "s.txt",
        ])
        .unwrap();
        let Some(Command::GenDirectory(args)) = cli.command else {
            panic!("no subcommand")
        };
        assert_eq!((args.terminals, args.groups, args.seed), (10, 3, 1));
    }
}
