//! A raw signaling socket.

use futures_util::{SinkExt, StreamExt};
use hearth_proto::{ClientMessage, ServerMessage, decode_server, encode};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// Failures of the signaling socket.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Connecting or reading/writing failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server closed the socket.
    #[error("closed by server")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The server sent something that is not a protocol message.
    #[error("undecodable server message: {0}")]
    Decode(String),
}

/// A signaling WebSocket to a Hearth server.
pub struct Signal {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Signal {
    /// Connects to `ws_url` (e.g. `ws://127.0.0.1:8080/ws`).
    pub async fn connect(ws_url: &str) -> Result<Self, SignalError> {
        let (ws, _) = connect_async(ws_url).await?;
        Ok(Self { ws })
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalError> {
        self.send_text(encode(message)).await
    }

    /// Sends any text frame, valid or not.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), SignalError> {
        self.ws.send(Message::Text(text.into().into())).await?;
        Ok(())
    }

    /// Sends a binary frame (not part of the protocol).
    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), SignalError> {
        self.ws.send(Message::Binary(data.into())).await?;
        Ok(())
    }

    /// The next protocol message, skipping pings; `Closed` when the server closed the socket.
    pub async fn recv(&mut self, within: Duration) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| SignalError::Timeout)?;
            match frame {
                None | Some(Ok(Message::Close(_))) => return Err(SignalError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    return decode_server(&text).map_err(|e| SignalError::Decode(e.to_string()));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Reads messages until one matches `pred`, returning it (others are discarded).
    pub async fn recv_until(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.recv(left).await?;
            if pred(&message) {
                return Ok(message);
            }
        }
    }

    /// Whether the server closes the socket within `within` (messages before the close are
    /// discarded). Does not answer pings, so it also sees idle timeouts.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Splits into the underlying stream (for the participant driver).
    pub(crate) fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }
}
