//! Time on a recording: each stream's RTP clock turned into milliseconds since its first frame,
//! and sender reports turned into one wall clock per publisher, so that a participant's audio
//! and video files start at the right moments relative to each other.

/// An RTP clock read as milliseconds since a stream's first recorded frame.
#[derive(Debug, Clone)]
pub struct StreamClock {
    rate: u32,
    /// First frame's timestamp, extended to 64 bits (the origin of the file's time).
    first: Option<i64>,
    /// The same, as it came.
    first_raw: Option<u32>,
    /// The last timestamp seen, extended, and its raw value: to unwrap the next one.
    last: i64,
    last_raw: u32,
}

impl StreamClock {
    /// A clock ticking `rate` times a second (90 000 for video, 48 000 for Opus).
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1),
            first: None,
            first_raw: None,
            last: 0,
            last_raw: 0,
        }
    }

    /// The RTP timestamp of the first frame, once there was one.
    pub fn first_raw(&self) -> Option<u32> {
        self.first_raw
    }

    /// Milliseconds from the first frame to the frame with timestamp `ts`. The first call
    /// defines zero. A frame from before zero (reordered across the start) reads as zero.
    pub fn ms(&mut self, ts: u32) -> u64 {
        let ext = match self.first {
            None => {
                let ext = i64::from(ts);
                self.first = Some(ext);
                self.first_raw = Some(ts);
                ext
            }
            Some(_) => self.last + i64::from(ts.wrapping_sub(self.last_raw) as i32),
        };
        self.last = ext;
        self.last_raw = ts;
        let first = self.first.unwrap_or(ext);
        let ticks = (ext - first).max(0);
        (ticks as u64).saturating_mul(1000) / u64::from(self.rate)
    }

    /// The sender's wall-clock time (ms, NTP era) of the first frame, given a sender report
    /// that says its RTP clock read `rtp_time` at wall time `ntp_time`.
    pub fn first_frame_wall_ms(&self, ntp_time: u64, rtp_time: u32) -> Option<f64> {
        let first = self.first_raw()?;
        let ticks = f64::from(first.wrapping_sub(rtp_time) as i32);
        Some(ntp_ms(ntp_time) + ticks * 1000.0 / f64::from(self.rate))
    }
}

/// An NTP timestamp (32.32 fixed point seconds) in milliseconds.
pub fn ntp_ms(ntp: u64) -> f64 {
    let seconds = (ntp >> 32) as f64;
    let fraction = (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0;
    (seconds + fraction) * 1000.0
}

/// How far a sender report may move a stream's start from when its first frame arrived. More
/// than this means the sender's clocks disagree (a broken client), and arrival time is used.
pub const MAX_SR_CORRECTION_MS: f64 = 2000.0;

/// Where one stream of a publisher starts on the recording's timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// When its first frame arrived, in ms since the recording started.
    pub arrival_ms: f64,
    /// The publisher's wall-clock time of that frame, from its sender reports, if known.
    pub sender_wall_ms: Option<f64>,
}

/// The start of each of one publisher's streams on the recording's timeline.
///
/// Arrival time is late by network delay, jitter and (for video) the wait for a keyframe; the
/// sender reports say exactly how the streams' first frames relate on the sender's clock. The
/// least delayed stream fixes the offset between the sender's clock and the recording's, and
/// every stream with a report is placed by it; the others keep their arrival time.
pub fn place(streams: &[Placement]) -> Vec<f64> {
    let offset = streams
        .iter()
        .filter_map(|s| s.sender_wall_ms.map(|w| s.arrival_ms - w))
        .min_by(f64::total_cmp);
    streams
        .iter()
        .map(|s| match (offset, s.sender_wall_ms) {
            (Some(offset), Some(wall)) => {
                let placed = wall + offset;
                if (placed - s.arrival_ms).abs() <= MAX_SR_CORRECTION_MS {
                    placed.max(0.0)
                } else {
                    s.arrival_ms
                }
            }
            _ => s.arrival_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rtp_time_becomes_milliseconds_across_a_wrap() {
        let mut c = StreamClock::new(90_000);
        assert_eq!(c.ms(u32::MAX - 8999), 0);
        assert_eq!(c.ms(u32::MAX), 99);
        assert_eq!(c.ms(81_000), 1000, "wrapped past zero");
        assert_eq!(c.ms(u32::MAX - 9000), 0, "before the start reads as zero");
        assert_eq!(c.first_raw(), Some(u32::MAX - 8999));
    }

    #[test]
    fn a_sender_report_dates_the_first_frame() {
        let mut c = StreamClock::new(48_000);
        c.ms(48_000);
        // The report says RTP 96 000 was at NTP second 10: the first frame was one second
        // earlier.
        let wall = c.first_frame_wall_ms(10 << 32, 96_000).unwrap();
        assert!((wall - 9000.0).abs() < 1e-6, "{wall}");
    }

    #[test]
    fn streams_of_one_sender_are_placed_by_its_clock_not_their_arrival() {
        // Audio arrived at 100 ms; video's first keyframe at 450 ms, but the sender captured it
        // 200 ms after the audio's first frame.
        let placed = place(&[
            Placement {
                arrival_ms: 100.0,
                sender_wall_ms: Some(5000.0),
            },
            Placement {
                arrival_ms: 450.0,
                sender_wall_ms: Some(5200.0),
            },
            Placement {
                arrival_ms: 900.0,
                sender_wall_ms: None,
            },
        ]);
        assert_eq!(placed, vec![100.0, 300.0, 900.0]);
    }

    #[test]
    fn a_report_that_disagrees_wildly_is_ignored() {
        let placed = place(&[
            Placement {
                arrival_ms: 100.0,
                sender_wall_ms: Some(5000.0),
            },
            Placement {
                arrival_ms: 200.0,
                sender_wall_ms: Some(90_000.0),
            },
        ]);
        assert_eq!(placed, vec![100.0, 200.0]);
    }
}
