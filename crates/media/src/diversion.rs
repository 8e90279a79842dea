//! Simulcast streams taken out of webrtc-rs's routing and handed to Hearth's track reader
//! directly.
//!
//! webrtc-rs 0.21 learns which SSRC is which simulcast layer from the MID and RID header
//! extensions of the layer's first packets, and forgets it whenever a new offer is applied
//! (adding a screen share, say). Browsers stop sending those extensions once the SFU's
//! receiver reports acknowledge the stream, so after such a renegotiation webrtc-rs drops
//! every packet of the camera's layers: measured in Chromium, all three layers, for good.
//!
//! So once a layer has been identified (its track's `OnOpen` names SSRC and RID), the publish
//! connection's [`crate::RtcpTap`] diverts that SSRC's packets into a queue of the track's
//! reader, whatever webrtc-rs thinks of them afterwards. The tap sits application-most in the
//! interceptor chain: NACKs, receiver reports and transport feedback have seen the packets
//! already.

use rtc::rtp;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Most SSRCs diverted on one connection: three layers of a camera, with room for a layer
/// whose SSRC changed. More is a misbehaving client; the oldest entries go.
const MAX_ROUTES: usize = 12;

/// Packets a reader may have waiting; beyond that they are dropped (counted by the reader's
/// gaps, as any loss).
pub(crate) const DIVERTED_QUEUE: usize = 1024;

/// The diverted SSRCs of one publish connection and where their packets go.
#[derive(Default)]
pub struct Diversions {
    routes: Mutex<Vec<(u32, mpsc::Sender<rtp::Packet>)>>,
}

impl std::fmt::Debug for Diversions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diversions").finish_non_exhaustive()
    }
}

impl Diversions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u32, mpsc::Sender<rtp::Packet>)>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `ssrc`'s packets to `to` from now on.
    pub(crate) fn divert(&self, ssrc: u32, to: mpsc::Sender<rtp::Packet>) {
        let mut routes = self.lock();
        routes.retain(|(s, tx)| *s != ssrc && !tx.is_closed());
        if routes.len() >= MAX_ROUTES {
            routes.remove(0);
        }
        routes.push((ssrc, to));
    }

    /// Offers `packet`: `None` if it was diverted (or dropped because its reader is behind),
    /// the packet back if it is not a diverted stream's.
    pub(crate) fn take(&self, packet: rtp::Packet) -> Option<rtp::Packet> {
        let routes = self.lock();
        let Some((_, tx)) = routes.iter().find(|(s, _)| *s == packet.header.ssrc) else {
            return Some(packet);
        };
        match tx.try_send(packet) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => None,
            // The reader is gone (the track ended): let webrtc-rs have it, it will drop it.
            Err(mpsc::error::TrySendError::Closed(packet)) => Some(packet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u32, seq: u16) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p
    }

    #[test]
    fn diverted_ssrcs_go_to_their_reader_and_others_pass() {
        let d = Diversions::default();
        let (tx, mut rx) = mpsc::channel(2);
        d.divert(7, tx);
        assert!(d.take(packet(7, 1)).is_none());
        assert_eq!(d.take(packet(8, 1)).map(|p| p.header.ssrc), Some(8));
        assert_eq!(rx.try_recv().unwrap().header.sequence_number, 1);
        // A full queue drops rather than waits: the caller is webrtc-rs's driver.
        assert!(d.take(packet(7, 2)).is_none());
        assert!(d.take(packet(7, 3)).is_none());
        assert!(d.take(packet(7, 4)).is_none());
        assert_eq!(rx.try_recv().unwrap().header.sequence_number, 2);
        drop(rx);
        assert!(
            d.take(packet(7, 5)).is_some(),
            "a closed reader gets nothing"
        );
    }

    #[test]
    fn routes_are_bounded() {
        let d = Diversions::default();
        let (tx, _rx) = mpsc::channel(1);
        for ssrc in 0..100 {
            d.divert(ssrc, tx.clone());
        }
        assert_eq!(d.lock().len(), MAX_ROUTES);
        assert!(d.take(packet(99, 0)).is_none());
        assert!(d.take(packet(0, 0)).is_some(), "the oldest went");
    }
}
