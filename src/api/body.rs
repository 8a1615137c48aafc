//! The response body: a buffered one, or a stream fed from a channel (a backup, produced by a
//! blocking task while the client reads it). A stream that ends in an error aborts the response,
//! so a client never mistakes a cut-off stream for a complete one.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::Full;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::sync::mpsc;

/// What a streaming producer sends: a chunk, or the error that ends the response.
pub type Chunk = Result<Bytes, std::io::Error>;

pub enum Body {
    Full(Full<Bytes>),
    Channel(mpsc::Receiver<Chunk>),
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Full::new(bytes.into()))
    }

    /// A streaming body and the sender that feeds it (`capacity` chunks may wait unread).
    pub fn channel(capacity: usize) -> (mpsc::Sender<Chunk>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, Self::Channel(rx))
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Self::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Self::Channel(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(full) => full.is_end_stream(),
            Self::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(full) => full.size_hint(),
            Self::Channel(_) => SizeHint::default(),
        }
    }
}
