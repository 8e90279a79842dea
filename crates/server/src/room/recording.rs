//! A room's recording: started and stopped by hosts, fed every published track through a tap
//! and every join, leave and chat message, and announced to everyone while it runs.

use super::{Refusal, RoomEvent, RoomTask, refusal};
use crate::recordings::StartError;
use crate::sessions::role_name;
use hearth_media::{PacketTap, PublishedTrack, TapHandle};
use hearth_proto::{ErrorCode, RecordingId, RecordingStatus, ServerMessage, TrackId};
use hearth_record::{Outcome, Presence, Recorder, StreamFeed};
use rtc::rtp;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

/// The recording a room is making.
pub(super) struct ActiveRecording {
    pub status: RecordingStatus,
    recorder: Recorder,
    /// Per recorded track: where its packets go, and the tap that sends them (dropping it
    /// detaches the tap).
    feeds: HashMap<TrackId, (StreamFeed, TapHandle)>,
}

/// Hands a published track's packets to the recorder (see `hearth_media::PacketTap`).
struct RecorderTap(StreamFeed);

impl PacketTap for RecorderTap {
    fn offer(&self, packet: &Arc<rtp::Packet>) -> bool {
        self.0.offer(packet)
    }

    fn sender_report(&self, ntp_time: u64, rtp_time: u32) {
        self.0.sender_report(ntp_time, rtp_time);
    }
}

impl RoomTask {
    fn presence(&self, id: &hearth_proto::ParticipantId) -> Option<Presence> {
        let p = self.room.participant(id)?;
        Some(Presence {
            id: id.to_string(),
            name: p.name.clone(),
            role: role_name(p.role).into(),
        })
    }

    /// Starts recording (nothing changes if it already is). Returns what is recording.
    pub(super) fn start_recording(&mut self) -> Result<RecordingStatus, Refusal> {
        if let Some(active) = &self.recording {
            return Ok(active.status.clone());
        }
        if self.ended {
            return Err(refusal(ErrorCode::SessionEnded, "this session has ended"));
        }
        let present: Vec<Presence> = self
            .members
            .keys()
            .filter_map(|id| self.presence(id))
            .collect();
        let (status, recorder) = self
            .recordings
            .start(self.room.info(), present, self.commands.clone())
            .map_err(|e| match e {
                StartError::Disabled => refusal(
                    ErrorCode::RecordingUnavailable,
                    "recording is not enabled on this server (no recording directory)",
                ),
                StartError::Failed(message) => refusal(ErrorCode::RecordingUnavailable, message),
            })?;
        tracing::info!(session_id = %self.session_id(), recording_id = %status.id, "recording started");
        self.recording = Some(ActiveRecording {
            status: status.clone(),
            recorder,
            feeds: HashMap::new(),
        });
        let tracks: Vec<Arc<PublishedTrack>> = self.published.values().cloned().collect();
        for track in tracks {
            self.record_track(&track);
        }
        let announced = status.clone();
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::RecordingUpdated {
                recording: Some(announced.clone()),
                error: None,
            })
        });
        Ok(status)
    }

    /// Stops recording, if it is. Returns the recorder's thread, which finishes the files; the
    /// caller joins it where blocking is allowed.
    pub(super) fn stop_recording(&mut self) -> Option<JoinHandle<Outcome>> {
        let active = self.recording.take()?;
        tracing::info!(session_id = %self.session_id(), recording_id = %active.status.id, "recording stopped");
        // Taps go first, so nothing more is offered to a recorder that is finishing.
        drop(active.feeds);
        let thread = active.recorder.stop();
        self.broadcast(None, || {
            RoomEvent::Message(ServerMessage::RecordingUpdated {
                recording: None,
                error: None,
            })
        });
        thread
    }

    /// Stops recording without waiting for the files to be finished.
    pub(super) fn stop_recording_in_background(&mut self) {
        if let Some(thread) = self.stop_recording() {
            // Finishing writes each file's index: a blocking job, off the room task.
            tokio::task::spawn_blocking(move || thread.join());
        }
    }

    /// The recorder ended by itself (an error such as a full disk).
    pub(super) fn recording_ended(&mut self, id: &RecordingId, error: Option<String>) {
        let Some(active) = &self.recording else {
            return;
        };
        if active.status.id != *id {
            return;
        }
        let Some(error) = error else {
            return;
        };
        tracing::warn!(session_id = %self.session_id(), recording_id = %id, %error, "recording failed");
        self.recording = None;
        self.broadcast_to_runners(|| ServerMessage::RecordingUpdated {
            recording: None,
            error: Some(error.clone()),
        });
        let runners = self.runner_ids();
        let others: Vec<_> = self
            .members
            .keys()
            .filter(|id| !runners.contains(id))
            .cloned()
            .collect();
        for id in others {
            self.send(
                &id,
                RoomEvent::Message(ServerMessage::RecordingUpdated {
                    recording: None,
                    error: None,
                }),
            );
        }
    }

    /// Starts recording `track`, if the room is recording.
    pub(super) fn record_track(&mut self, track: &Arc<PublishedTrack>) {
        let Some(active) = &mut self.recording else {
            return;
        };
        if active.feeds.contains_key(track.id()) {
            return;
        }
        let weak: Weak<PublishedTrack> = Arc::downgrade(track);
        let request = Box::new(move || {
            // A muted track sends nothing to record: asking it for keyframes would only make
            // its publisher encode them for nobody.
            if let Some(track) = weak.upgrade()
                && !track.is_paused()
            {
                track.request_keyframe();
            }
        });
        match active.recorder.add_stream(track.info().clone(), request) {
            Ok(feed) => {
                let tap = track.attach_tap(Arc::new(RecorderTap(feed.clone())));
                active.feeds.insert(track.id().clone(), (feed, tap));
            }
            Err(_) => {
                tracing::debug!(track_id = %track.id(), "recorder gone; track not recorded");
            }
        }
    }

    /// Stops recording `id` (it ended or was unpublished).
    pub(super) fn unrecord_track(&mut self, id: &TrackId) {
        if let Some(active) = &mut self.recording
            && let Some((feed, tap)) = active.feeds.remove(id)
        {
            drop(tap);
            let _ = active.recorder.end_stream(&feed);
        }
    }

    /// Tells the recorder someone entered.
    pub(super) fn record_join(&mut self, id: &hearth_proto::ParticipantId) {
        self.empty_since = None;
        if let (Some(active), Some(who)) = (&self.recording, self.presence(id)) {
            let _ = active.recorder.joined(who);
        }
    }

    /// Tells the recorder someone left.
    pub(super) fn record_leave(&self, id: &hearth_proto::ParticipantId) {
        if let Some(active) = &self.recording {
            let _ = active.recorder.left(id.to_string());
        }
    }

    /// Tells the recorder what was said.
    pub(super) fn record_chat(&self, message: &hearth_proto::ChatMessage) {
        if let Some(active) = &self.recording {
            let _ = active.recorder.chat(
                message.from.to_string(),
                message.name.clone(),
                message.text.clone(),
            );
        }
    }

    /// The last person left: if the room is still empty after the grace period
    /// (`ServerConfig::recording_empty_grace`), the recording stops by itself.
    pub(super) fn schedule_empty_check(&mut self) {
        self.empty_since = Some(std::time::Instant::now());
        let Some(active) = &self.recording else {
            return;
        };
        let id = active.status.id.clone();
        let room = self.commands.clone();
        let grace = self.recordings.empty_grace();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(room) = room.upgrade() {
                let _ = room.try_send(super::RoomCommand::StopRecordingIfEmpty { id });
            }
        });
    }

    pub(super) fn stop_recording_if_empty(&mut self, id: &RecordingId) {
        let current = self.recording.as_ref().map(|a| &a.status.id);
        // Empty since the leave that scheduled this check, not merely empty at this moment:
        // someone may have come and gone meanwhile, and their own leave has its own check.
        let grace = self.recordings.empty_grace();
        let empty_long_enough = self
            .empty_since
            .is_some_and(|since| since.elapsed() >= grace);
        if current == Some(id) && self.members.is_empty() && empty_long_enough {
            tracing::info!(session_id = %self.session_id(), recording_id = %id, "room stayed empty; recording stops");
            self.stop_recording_in_background();
        }
    }

    /// The recording in progress, for a newcomer's `joined`.
    pub(super) fn recording_status(&self) -> Option<RecordingStatus> {
        self.recording.as_ref().map(|a| a.status.clone())
    }
}
