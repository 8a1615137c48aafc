//! `/api/v1/admin` (scope `admin`): the online backup.

use std::io::Write;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::Response;

use super::body::{Body, Chunk};
use super::HttpResponse;
use crate::app::App;
use crate::error::ApiError;

/// Chunks of this size are handed to the connection.
const CHUNK: usize = 64 * 1024;

/// Streams a consistent backup of the whole store (one read transaction) while writes go on.
/// The body is produced on a blocking thread; a failure midway aborts the response.
pub(super) fn backup(app: &App) -> Result<HttpResponse, ApiError> {
    let (tx, body) = Body::channel(8);
    let store = app.store.clone();
    let now = crate::time::now_ms();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match store.backup(&mut out) {
            Ok(summary) => tracing::info!(
                records = summary.records,
                bytes = summary.bytes,
                "backup streamed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "backup failed or was abandoned");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stamp = crate::time::rfc3339(now).replace(':', "");
    let disposition = format!("attachment; filename=\"hookd-backup-{stamp}.hookdbak\"");
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Buffers writes into chunks for the response channel; a closed channel (the client went
/// away) ends the backup with an error.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}
