//! What the store's operations take and give, whichever backend keeps the data: the boundary's
//! vocabulary (see [`super::Store`]).

use std::time::Duration;

use crate::model::{Attempt, Delivery, Endpoint, Message};

/// Store failures. `NotFound`, `Conflict` and `Corrupt` are the caller's and fail one request;
/// `Full` and `Unavailable` are states of the store that pass; the rest are logged and become
/// 500.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("storage: {0}")]
    Storage(String),
    #[error("record {0} is corrupt or of an unknown schema version")]
    Corrupt(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The routing table this instance routed with is older than the database's (another
    /// instance changed an endpoint): nothing was stored; route again and retry.
    #[cfg(feature = "postgres")]
    #[error("the routing table changed; route again")]
    Stale,
    /// The data volume is full, or (`low`) has less than `store.min_free_bytes` left for a
    /// write that adds data.
    #[error("{}", if *low {
        format!("the data volume holding {dir} has {free} bytes free, under store.min_free_bytes ({min_free})")
    } else {
        format!("the data volume holding {dir} is full ({free} bytes free)")
    })]
    Full {
        dir: String,
        free: u64,
        min_free: u64,
        low: bool,
    },
    /// An I/O error: the store reopens the database, and refuses writes (and, until it has
    /// reopened, reads) meanwhile.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// An I/O error inside a transaction; `full` when the volume ran out of space.
    #[error("I/O error: {message}")]
    Io { full: bool, message: String },
}

/// Record counts, from [`Store::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub endpoints: u64,
    pub messages: u64,
    /// Messages whose deliveries have all ended (retention removes them in time).
    pub ended_messages: u64,
    pub pending_deliveries: u64,
    /// Deliveries kept: pending ones, and those that gave up (until their message goes).
    pub deliveries: u64,
    pub attempts: u64,
    pub disabled_endpoints: u64,
    /// When the oldest message with a delivery still pending was accepted (Unix ms).
    pub oldest_pending_ms: Option<i64>,
    /// Bytes of keys and values the messages and the deliveries take (redb's own count): a
    /// message is stored once, its deliveries to each endpoint refer to it.
    pub message_bytes: u64,
    pub delivery_bytes: u64,
}

/// A delivery with its message and endpoint, either of which may have been deleted.
pub type DeliveryContext = (Delivery, Option<Message>, Option<Endpoint>);

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id to pass as the next cursor, when there are more items.
    pub next: Option<String>,
}

/// An alert to accept: the message, and the endpoints routing chose for it (against a
/// snapshot of the routing table, before the write).
#[derive(Debug, Clone)]
pub struct Ingest {
    pub message: Message,
    pub targets: Vec<String>,
}

/// What an attempt means for its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEffect {
    /// A 2xx: the endpoint is healthy again.
    Success,
    /// A failure at `now_ms`; the endpoint is disabled once it has been failing without a break
    /// for `disable_after_ms`.
    Failure { now_ms: i64, disable_after_ms: i64 },
    /// 410 Gone: disable the endpoint now.
    Gone,
    /// No effect (the endpoint was already disabled or deleted).
    None,
}

/// An attempt and what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The outbox entry it belongs to; `None` for a test send, which has none.
    pub delivery_key: Option<String>,
    pub attempt: Attempt,
    pub effect: EndpointEffect,
}

/// The `[retention]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub messages_ms: i64,
    pub attempts_ms: i64,
    pub attempts_per_endpoint: u64,
    /// Most records one step removes.
    pub batch: usize,
    pub interval: Duration,
}

/// One step's input.
#[derive(Debug, Clone)]
pub struct Step {
    pub now_ms: i64,
    pub settings: Retention,
    /// The attempt-log endpoint to resume after.
    pub cursor: Option<String>,
}

/// What a step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub messages: usize,
    pub deliveries: usize,
    pub attempts: usize,
    /// Where the attempt trimming stopped (`None`: it went round).
    pub cursor: Option<String>,
    /// Whether work is left that another step should do soon.
    pub more: bool,
}

/// The dispatcher's answer for one due delivery it is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Started: counts toward the endpoint's share.
    Taken,
    /// Not this one (already in flight); look at the next.
    Skip,
    /// Nothing more for this endpoint.
    NextEndpoint,
    /// Nothing more at all (no delivery slot left).
    Stop,
}

/// A record as both backends keep it: [`crate::backup_format::RECORD_VERSION`], then the JSON
/// of a model type.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![crate::backup_format::RECORD_VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Storage(e.to_string()))?;
    Ok(out)
}

/// Reads a record written by [`encode`]; `key` names it in the error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&crate::backup_format::RECORD_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|_| StoreError::Corrupt(key.to_owned()))
        }
        _ => Err(StoreError::Corrupt(key.to_owned())),
    }
}

/// One record of a store on its way to another backend (`hookd migrate`): its bytes as stored
/// (sealed values stay sealed under the same master key), beside what the target indexes.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub enum Moved {
    Endpoint(Box<Endpoint>, Vec<u8>),
    Token(crate::model::Token, Vec<u8>),
    Meta(String, Vec<u8>),
    /// A message, and when its last delivery ended (none while some are pending).
    Message(Message, Vec<u8>, Option<i64>),
    Delivery(Delivery),
    Attempt(Attempt, Vec<u8>),
}
