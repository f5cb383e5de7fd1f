//! Dispatch: who talks to whom — the `directory` of terminals, groups and ACLs, the
//! `backup-radius-m` of emergencies and the number of `private-calls` — and the rules these
//! settings must meet.

use super::error::{ConfigError, invalid};
use super::settings::Config;

impl Config {
    /// The dispatch part of [`Config::validate`].
    pub(super) fn validate_dispatch(&self) -> Result<(), ConfigError> {
        if !(1..=20_000).contains(&self.backup_radius_m) {
            return invalid("backup-radius-m", "must be between 1 and 20000");
        }
        if !(1..=4096).contains(&self.private_calls) {
            return invalid("private-calls", "must be between 1 and 4096");
        }
        Ok(())
    }
}
