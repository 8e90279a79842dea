//! The recorder's thread. A recording does file I/O, which may block (a slow or full disk), so
//! it runs on a thread of its own, never on the async runtime that forwards live media. Packets
//! reach it through one bounded queue that is offered to and never waited on: when the disk
//! falls behind, the recording loses packets (and restarts video at the next keyframe), the
//! live session loses nothing.

use crate::manifest::Manifest;
use crate::recording::{Presence, Recording, RecordingSetup};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use hearth_proto::TrackInfo;
use hearth_webm::WebmError;
use rtc::rtp;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packets queued for the recorder before it drops: 1.4 s of a 16-person meeting (2 900
/// packets a second), several seconds of a smaller one. Enough to ride out a disk hiccup.
pub const PACKET_QUEUE: usize = 4096;
/// Control messages queued (track and presence changes, chat): the room sends few.
const CONTROL_QUEUE: usize = 1024;
/// How often the recorder looks at the clock: it releases packets held for reordering, writes
/// out clusters and saves the manifest.
const TICK: Duration = Duration::from_millis(100);
/// How long packets wait in the queue before the recorder takes them, as a batch. Waking the
/// thread for every packet was most of its cost: recording a four-person meeting (8 streams,
/// ~750 packets a second) took 1.5% of a core woken per packet and 0.95% in 20 ms batches. A
/// recording has no deadline to meet, and at 2 900 packets a second the queue holds 1.4 s.
const BATCH: Duration = Duration::from_millis(20);

/// What a tap hands the recorder for one stream.
#[derive(Debug)]
enum Input {
    /// A packet and when it was offered (its arrival, as far as the recording is concerned).
    Rtp(Arc<rtp::Packet>, Instant),
    SenderReport {
        ntp_time: u64,
        rtp_time: u32,
    },
}

/// Asks a stream's publisher for a keyframe.
pub type KeyframeRequester = Box<dyn Fn() + Send>;

/// What the room tells its recorder.
enum Control {
    AddStream {
        key: u64,
        info: TrackInfo,
        request_keyframe: KeyframeRequester,
    },
    EndStream {
        key: u64,
    },
    Joined(Presence),
    Left(String),
    Chat {
        participant_id: String,
        name: String,
        text: String,
    },
    Stop,
}

/// How a recording ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Stopped as asked; every file finished.
    Complete(Manifest),
    /// Stopped by an error (the message says which); what was written is kept.
    Failed(Manifest, String),
}

impl Outcome {
    /// The final manifest.
    pub fn manifest(&self) -> &Manifest {
        match self {
            Self::Complete(m) | Self::Failed(m, _) => m,
        }
    }
}

/// Feeds one stream's packets to the recorder without ever waiting.
#[derive(Debug, Clone)]
pub struct StreamFeed {
    key: u64,
    packets: Sender<(u64, Input)>,
    /// Packets refused because the queue was full.
    dropped: Arc<AtomicU64>,
}

impl StreamFeed {
    /// Offers a packet; returns false (and counts it) when the recorder is behind.
    pub fn offer(&self, packet: &Arc<rtp::Packet>) -> bool {
        match self
            .packets
            .try_send((self.key, Input::Rtp(Arc::clone(packet), Instant::now())))
        {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Passes on the publisher's sender report (lost if the queue is full; another follows).
    pub fn sender_report(&self, ntp_time: u64, rtp_time: u32) {
        let _ = self
            .packets
            .try_send((self.key, Input::SenderReport { ntp_time, rtp_time }));
    }
}

/// The room's end of a running recording.
#[derive(Debug)]
pub struct Recorder {
    control: Sender<(Instant, Control)>,
    packets: Sender<(u64, Input)>,
    next_key: u64,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<Outcome>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AddStream { .. } => "AddStream",
            Self::EndStream { .. } => "EndStream",
            Self::Joined(_) => "Joined",
            Self::Left(_) => "Left",
            Self::Chat { .. } => "Chat",
            Self::Stop => "Stop",
        })
    }
}

/// The recorder's thread is gone (it failed, or was stopped): the message did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderGone;

impl Recorder {
    /// Creates the recording's directory and first manifest, then starts its thread.
    /// `on_finish` runs on that thread once the recording has ended, however it ended.
    /// `dropped` counts packets the recorder could not take in time (it may be shared by
    /// several recordings).
    pub fn start(
        setup: RecordingSetup,
        present: Vec<Presence>,
        dropped: Arc<AtomicU64>,
        on_finish: Box<dyn FnOnce(&Outcome) + Send>,
    ) -> Result<Self, WebmError> {
        let recording = Recording::start(setup, present, Instant::now())?;
        let (control, control_rx) = bounded(CONTROL_QUEUE);
        let (packets, packets_rx) = bounded(PACKET_QUEUE);
        let name = format!("recorder-{}", short(&recording.manifest().id));
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let outcome = run(recording, &control_rx, &packets_rx);
            on_finish(&outcome);
            outcome
        })?;
        Ok(Self {
            control,
            packets,
            next_key: 1,
            dropped,
            thread: Some(thread),
        })
    }

    fn send(&self, control: Control) -> Result<(), RecorderGone> {
        self.control
            .try_send((Instant::now(), control))
            .map_err(|_| RecorderGone)
    }

    /// Starts recording a track. Returns the feed its packets go to.
    pub fn add_stream(
        &mut self,
        info: TrackInfo,
        request_keyframe: KeyframeRequester,
    ) -> Result<StreamFeed, RecorderGone> {
        let key = self.next_key;
        self.next_key += 1;
        self.send(Control::AddStream {
            key,
            info,
            request_keyframe,
        })?;
        Ok(StreamFeed {
            key,
            packets: self.packets.clone(),
            dropped: Arc::clone(&self.dropped),
        })
    }

    /// A track ended.
    pub fn end_stream(&self, feed: &StreamFeed) -> Result<(), RecorderGone> {
        self.send(Control::EndStream { key: feed.key })
    }

    /// Someone entered the session.
    pub fn joined(&self, who: Presence) -> Result<(), RecorderGone> {
        self.send(Control::Joined(who))
    }

    /// Someone left.
    pub fn left(&self, participant_id: String) -> Result<(), RecorderGone> {
        self.send(Control::Left(participant_id))
    }

    /// A chat message.
    pub fn chat(
        &self,
        participant_id: String,
        name: String,
        text: String,
    ) -> Result<(), RecorderGone> {
        self.send(Control::Chat {
            participant_id,
            name,
            text,
        })
    }

    /// Whether the thread is still recording.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Asks the recording to stop and returns its thread, to join when the caller may block
    /// (it finishes every file first).
    pub fn stop(mut self) -> Option<JoinHandle<Outcome>> {
        let _ = self.send(Control::Stop);
        self.thread.take()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the senders ends the thread as a clean stop; nobody waits for it.
        let _ = self.control.try_send((Instant::now(), Control::Stop));
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Each recorded stream's way to ask its publisher for a keyframe.
type Requesters = std::collections::HashMap<u64, KeyframeRequester>;

fn run(
    mut recording: Recording,
    control: &Receiver<(Instant, Control)>,
    packets: &Receiver<(u64, Input)>,
) -> Outcome {
    let mut requesters = Requesters::new();
    let mut next_tick = Instant::now() + TICK;
    loop {
        // Control messages (few) are handled at once; packets wait for the next batch.
        let wait = BATCH.min(next_tick.saturating_duration_since(Instant::now()));
        let step = match control.recv_timeout(wait) {
            // A dropped handle stops the recording cleanly too.
            Ok((_, Control::Stop)) | Err(RecvTimeoutError::Disconnected) => {
                return finish(recording, Instant::now());
            }
            Ok((at, command)) => handle(&mut recording, &mut requesters, command, at),
            Err(RecvTimeoutError::Timeout) => Ok(()),
        };
        if let Err(e) = step {
            return failed(recording, &e);
        }
        // At most a queue's worth, so a flood cannot keep the loop from its clock.
        for (key, input) in packets.try_iter().take(PACKET_QUEUE) {
            if let Err(e) = feed(&mut recording, &requesters, key, input) {
                return failed(recording, &e);
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            match recording.tick(now) {
                Ok(wants) => {
                    for key in wants {
                        if let Some(request) = requesters.get(&key) {
                            request();
                        }
                    }
                }
                Err(e) => return failed(recording, &e),
            }
        }
    }
}

fn handle(
    recording: &mut Recording,
    requesters: &mut Requesters,
    command: Control,
    at: Instant,
) -> Result<(), WebmError> {
    match command {
        Control::AddStream {
            key,
            info,
            request_keyframe,
        } => {
            if recording.add_stream(key, info) {
                // Recording starts on a keyframe: ask for one now rather than wait for it.
                request_keyframe();
                requesters.insert(key, request_keyframe);
            }
        }
        Control::EndStream { key } => {
            requesters.remove(&key);
            recording.end_stream(key, at)?;
        }
        Control::Joined(who) => recording.joined(who, at),
        Control::Left(id) => recording.left(&id, at),
        Control::Chat {
            participant_id,
            name,
            text,
        } => recording.chat(&participant_id, &name, &text, at),
        Control::Stop => {}
    }
    Ok(())
}

fn feed(
    recording: &mut Recording,
    requesters: &Requesters,
    key: u64,
    input: Input,
) -> Result<(), WebmError> {
    match input {
        Input::Rtp(packet, arrived) => {
            let wants = recording.packet(key, (*packet).clone(), arrived)?;
            if wants && let Some(request) = requesters.get(&key) {
                request();
            }
        }
        Input::SenderReport { ntp_time, rtp_time } => {
            recording.sender_report(key, ntp_time, rtp_time);
        }
    }
    Ok(())
}

fn finish(recording: Recording, now: Instant) -> Outcome {
    let id = recording.manifest().id.clone();
    // A stop can itself fail (the disk filled up while finishing): then it is a failure.
    let snapshot = recording.manifest().clone();
    match recording.stop(now) {
        Ok(manifest) => Outcome::Complete(manifest),
        Err(e) => {
            tracing::warn!(recording_id = %id, error = %e, "finishing the recording");
            let mut manifest = snapshot;
            manifest.state = crate::manifest::RecordingState::Failed;
            manifest.error = Some(describe(&e));
            Outcome::Failed(manifest, describe(&e))
        }
    }
}

fn failed(recording: Recording, error: &WebmError) -> Outcome {
    let message = describe(error);
    tracing::warn!(recording_id = %recording.manifest().id, error = %error, "recording stopped by an error");
    let manifest = recording.fail(message.clone(), Instant::now());
    Outcome::Failed(manifest, message)
}

/// A sentence for the host.
pub fn describe(error: &WebmError) -> String {
    if error.is_disk_full() {
        "the disk holding recordings is full; recording stopped (the live session goes on)".into()
    } else {
        format!("recording stopped: {error}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_recorder_that_falls_behind_refuses_packets_instead_of_waiting() {
        // A feed whose recorder never reads: what a stalled disk looks like from the SFU.
        let (packets, _rx) = bounded(PACKET_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let feed = StreamFeed {
            key: 1,
            packets,
            dropped: Arc::clone(&dropped),
        };
        let packet = Arc::new(rtp::Packet::default());
        let taken = (0..PACKET_QUEUE + 500)
            .filter(|_| feed.offer(&packet))
            .count();
        assert_eq!(taken, PACKET_QUEUE);
        assert_eq!(dropped.load(Ordering::Relaxed), 500);
    }
}
