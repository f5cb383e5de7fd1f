//! What a [`Talk`](super::Talk) handle tells its task: what was pressed,
//! then each encoded frame and the release.

use bytes::Bytes;
use ptt_proto::pb;

/// What was pressed: the group, and the priority and kind of the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TalkRequest {
    pub(crate) group: u32,
    pub(crate) priority: pb::Priority,
    pub(crate) kind: pb::FloorKind,
}

/// One encoded frame and when its audio was captured.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) opus: Bytes,
    pub(super) captured_us: u64,
}

/// What the handle tells its task.
#[derive(Debug)]
pub(super) enum Command {
    Frame(Frame),
    Release,
}
