//! The handle of one press of the talk button: it queues frames for the
//! talk task and watches its state.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::request::{Command, Frame, TalkRequest};
use super::state::{Grant, TalkEnd, TalkError, TalkState, TalkSummary};
use super::task::TalkTask;
use crate::clock::unix_us;
use crate::error::ClientError;
use crate::shared::Shared;

/// The handle of one press of the talk button. Push encoded 20 ms Opus
/// frames with [`Talk::push_frame`] from the moment of the press; end with
/// [`Talk::release`]. Dropping the handle releases too.
#[derive(Debug)]
pub struct Talk {
    group: u32,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<TalkState>,
    task: JoinHandle<TalkSummary>,
}

impl Talk {
    pub(crate) fn start(shared: Arc<Shared>, request: TalkRequest) -> Self {
        let capacity = shared.config.talk_buffer_frames.max(1);
        let (commands, rx) = mpsc::channel(capacity);
        let (state_tx, state) = watch::channel(TalkState::Requesting);
        let task = tokio::spawn(TalkTask::new(shared, request, rx, state_tx, capacity).run());
        Self {
            group: request.group,
            commands,
            state,
            task,
        }
    }

    /// The group talked in.
    #[must_use]
    pub fn group(&self) -> u32 {
        self.group
    }

    /// Where the talk is now.
    #[must_use]
    pub fn state(&self) -> TalkState {
        self.state.borrow().clone()
    }

    /// Queues one encoded Opus packet (normally 20 ms), captured now.
    pub fn push_frame(&self, opus: Bytes) -> Result<(), TalkError> {
        self.push_frame_at(opus, unix_us())
    }

    /// Queues one encoded Opus packet whose first sample was captured at
    /// `captured_us` (Unix µs), for callers that know better than "now".
    pub fn push_frame_at(&self, opus: Bytes, captured_us: u64) -> Result<(), TalkError> {
        if let TalkState::Ended(end) = &*self.state.borrow() {
            return Err(TalkError::Ended(end.clone()));
        }
        match self
            .commands
            .try_send(Command::Frame(Frame { opus, captured_us }))
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(TalkError::Overloaded),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(TalkError::Ended(self.end_or_failed()))
            }
        }
    }

    fn end_or_failed(&self) -> TalkEnd {
        match &*self.state.borrow() {
            TalkState::Ended(end) => end.clone(),
            _ => TalkEnd::Failed(ClientError::Protocol("talk task ended".into())),
        }
    }

    /// Waits until the floor is granted (frames buffered so far are being
    /// sent), or the talk ended without it.
    pub async fn granted(&self) -> Result<Grant, TalkError> {
        let mut state = self.state.clone();
        let state = state
            .wait_for(|s| matches!(s, TalkState::Talking { .. } | TalkState::Ended(_)))
            .await
            .map_err(|_| {
                TalkError::Ended(TalkEnd::Failed(ClientError::Protocol(
                    "talk task ended".into(),
                )))
            })?
            .clone();
        match state {
            TalkState::Talking { burst, talk_limit } => Ok(Grant { burst, talk_limit }),
            TalkState::Ended(end) => Err(TalkError::Ended(end)),
            _ => Err(TalkError::Ended(self.end_or_failed())),
        }
    }

    /// Waits until the talk ends by itself (revoked, denied, disconnected).
    pub async fn ended(&self) -> TalkEnd {
        let mut state = self.state.clone();
        let ended = state
            .wait_for(|s| matches!(s, TalkState::Ended(_)))
            .await
            .map(|s| s.clone());
        match ended {
            Ok(TalkState::Ended(end)) => end,
            _ => self.end_or_failed(),
        }
    }

    /// Releases the button: frames pushed so far are sent (the last one
    /// marked as the burst's last frame) and the floor is given back; before
    /// the grant, a queued request is withdrawn and its audio discarded.
    pub async fn release(self) -> TalkSummary {
        let _ = self.commands.send(Command::Release).await;
        let group = self.group;
        drop(self.commands);
        self.task.await.unwrap_or_else(|_| TalkSummary {
            group,
            burst: None,
            frames_sent: 0,
            frames_dropped: 0,
            end: TalkEnd::Failed(ClientError::Protocol("talk task failed".into())),
        })
    }
}
