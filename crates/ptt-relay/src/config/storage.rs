//! Storage: what the relay keeps on disk — `data-dir`, the call log (`log-queue`) and the
//! recordings (`record`, `recordings-dir`, `recording-retention-days`, `recording-max-mib`,
//! `recording-queue`) — with the paths and recorder settings derived from them and the
//! rules they must meet.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, invalid};
use super::settings::Config;

impl Config {
    /// Largest `recording-queue`: 2^20 frames. The queue allocates every
    /// slot at start (about 60 MiB at this size) and holds 7 minutes of 50
    /// groups talking at once: anything larger is a typo.
    pub const MAX_RECORDING_QUEUE: usize = 1 << 20;

    /// The storage's part of [`Config::validate`].
    pub(super) fn validate_storage(&self) -> Result<(), ConfigError> {
        if self.log_queue == 0 {
            return invalid("log-queue", "must be at least 1");
        }
        // The queue is allocated in full at start: a typo must not reserve
        // gigabytes.
        if !(1..=Self::MAX_RECORDING_QUEUE).contains(&self.recording_queue) {
            return invalid("recording-queue", "must be between 1 and 1048576");
        }
        Ok(())
    }

    /// Path of the SQLite call log inside the data dir.
    pub fn calllog_path(&self) -> PathBuf {
        self.data_dir.join("pttd.sqlite")
    }

    /// Directory of the burst recordings: `recordings-dir`, else `<data-dir>/recordings`.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The recorder's settings, or `None` when recording is off.
    pub fn recording_settings(&self) -> Option<ptt_recording::Settings> {
        self.record.then(|| ptt_recording::Settings {
            dir: self.recordings_dir(),
            queue: self.recording_queue,
            limits: ptt_recording::Limits {
                max_age: (self.recording_retention_days > 0).then(|| {
                    Duration::from_secs(u64::from(self.recording_retention_days) * 86_400)
                }),
                max_bytes: (self.recording_max_mib > 0)
                    .then(|| self.recording_max_mib.saturating_mul(1 << 20)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_queue_beyond_the_cap_is_refused_by_name() {
        let with = |queue| {
            Config {
                recording_queue: queue,
                ..Config::default()
            }
            .validate()
        };
        assert!(with(Config::MAX_RECORDING_QUEUE).is_ok());
        for bad in [0, Config::MAX_RECORDING_QUEUE + 1, usize::MAX] {
            let error = with(bad).unwrap_err();
            assert!(error.to_string().contains("recording-queue"), "{error}");
        }
    }
}
