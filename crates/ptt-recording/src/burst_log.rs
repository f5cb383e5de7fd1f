//! What crash recovery asks of the record of bursts (the relay's call log),
//! so that the recordings a crash left and the rows that point at them
//! agree. This crate knows no database: the call log answers through
//! [`BurstLog`], and [`NoBurstLog`] stands in where there is none.

use std::error::Error;

/// A burst as recordings identify it. A burst id is unique within its group
/// for one run of the relay only (ids start over at each start), so rows of
/// the same key are told apart by their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BurstKey {
    /// The group the burst was in (an all-call gives each group its own).
    pub group: u32,
    /// The burst id.
    pub burst: u32,
    /// The talker's terminal id.
    pub talker: u32,
}

/// A logged burst, as recovery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedBurst {
    /// The row's id.
    pub id: i64,
    /// Which burst.
    pub key: BurstKey,
    /// When the burst started (unix ms): what its recording is named from.
    pub started_at_ms: i64,
    /// When it ended (unix ms).
    pub ended_at_ms: i64,
    /// The recording's path relative to the recordings directory, as the
    /// row stores it; `None` if the row names none.
    pub recording: Option<String>,
}

/// An error of the record of bursts (a database error, say).
pub type BurstLogError = Box<dyn Error + Send + Sync>;

/// The record of bursts, as crash recovery reads and marks it.
pub trait BurstLog {
    /// The rows of `key` whose burst, from its start to its end, widened by
    /// `slack_ms` on both sides, spans `at_ms` (when the recording's first
    /// frame reached the writer), the latest start first.
    fn bursts_around(
        &mut self,
        key: BurstKey,
        at_ms: i64,
        slack_ms: i64,
    ) -> Result<Vec<LoggedBurst>, BurstLogError>;

    /// The rows that name a recording, ended at or after `ended_from_ms`,
    /// and are not marked as having lost it.
    fn recorded_since(&mut self, ended_from_ms: i64) -> Result<Vec<LoggedBurst>, BurstLogError>;

    /// When the newest logged burst ended (unix ms); `None` without rows.
    fn newest_end(&mut self) -> Result<Option<i64>, BurstLogError>;

    /// Marks the rows `ids` as having lost their recording's audio in a
    /// crash, found so by recovery at `at_ms`.
    fn mark_lost(&mut self, ids: &[i64], at_ms: i64) -> Result<(), BurstLogError>;
}

/// No record of bursts: recovery names files from their own tags and marks
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBurstLog;

impl BurstLog for NoBurstLog {
    fn bursts_around(
        &mut self,
        _key: BurstKey,
        _at_ms: i64,
        _slack_ms: i64,
    ) -> Result<Vec<LoggedBurst>, BurstLogError> {
        Ok(Vec::new())
    }

    fn recorded_since(&mut self, _ended_from_ms: i64) -> Result<Vec<LoggedBurst>, BurstLogError> {
        Ok(Vec::new())
    }

    fn newest_end(&mut self) -> Result<Option<i64>, BurstLogError> {
        Ok(None)
    }

    fn mark_lost(&mut self, _ids: &[i64], _at_ms: i64) -> Result<(), BurstLogError> {
        Ok(())
    }
}
