//! Errors of the media layer.

/// What can go wrong setting up or negotiating a connection.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The remote SDP could not be parsed or applied.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// A remote ICE candidate could not be parsed or applied.
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    /// No UDP port in the configured range could be bound.
    #[error("no free UDP port in {0}")]
    NoPort(String),
    /// webrtc-rs failed in a way that is not the remote's fault.
    #[error("webrtc: {0}")]
    Webrtc(String),
}
