//! What the store's handles ask its writer to do ([`Op`]), what they get back ([`Done`]), and
//! the data the operations carry. The resource files send them; the writer applies each in
//! its batch's transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::StoreError;
use crate::model::{Attempt, Endpoint, EndpointPatch, Message, SealedSecret, Token};
use crate::routing::Matchers;

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

pub enum Op {
    /// An endpoint and its label matchers, compiled.
    CreateEndpoint(Box<Endpoint>, Arc<Matchers>),
    UpdateEndpoint {
        id: String,
        patch: Box<EndpointPatch>,
        now_ms: i64,
        /// The patch's label matchers compiled, when it sets them.
        matchers: Option<Arc<Matchers>>,
    },
    DeleteEndpoint(String),
    RotateSecret {
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    },
    CreateToken {
        token: Token,
        only_if_none: bool,
    },
    /// (token id, now: what has expired by then does not count as an admin).
    RevokeToken(String, i64),
    SetMeta(String, Vec<u8>),
    /// (token id, stored hash, new hash) for every token, and the scheme recorded.
    RehashTokens(Vec<(String, Vec<u8>, Vec<u8>)>),
    /// (token id, last used at) for tokens used since the last flush.
    TouchTokens(Vec<(String, i64)>),
    Ingest(Box<Ingest>),
    /// Requeues up to `limit` deliveries to `endpoint_id` that gave up in `[since_ms, until_ms]`.
    Recover {
        endpoint_id: String,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    },
    RecordAttempt(Box<AttemptRecord>),
    Resend {
        message_id: String,
        now_ms: i64,
    },
    /// Takes a delivery that cannot be loaded out of its endpoint's queue.
    Quarantine {
        due_ms: u64,
        key: String,
    },
    Prune(Box<Step>),
    Panic,
}

impl Op {
    /// Writes refused under `store.min_free_bytes`: those that add data, rather than record
    /// what happened to data already accepted or remove data.
    pub(super) fn adds_data(&self) -> bool {
        match self {
            Self::CreateEndpoint(..)
            | Self::Ingest(_)
            | Self::Resend { .. }
            | Self::Recover { .. } => true,
            Self::CreateToken { only_if_none, .. } => !only_if_none,
            _ => false,
        }
    }
}

pub enum Done {
    Unit,
    Endpoint(Box<Endpoint>),
    /// A yes/no answer: token created; endpoint now disabled.
    Flag(bool),
    Count(usize),
    Counts(usize, usize),
    Pruned(Report),
}

impl Done {
    pub fn endpoint(self) -> Result<Endpoint, StoreError> {
        match self {
            Self::Endpoint(e) => Ok(*e),
            _ => Err(wrong_kind()),
        }
    }

    pub fn count(self) -> Result<usize, StoreError> {
        match self {
            Self::Count(n) => Ok(n),
            _ => Err(wrong_kind()),
        }
    }

    pub fn counts(self) -> Result<(usize, usize), StoreError> {
        match self {
            Self::Counts(a, b) => Ok((a, b)),
            _ => Err(wrong_kind()),
        }
    }

    pub fn flag(self) -> Result<bool, StoreError> {
        match self {
            Self::Flag(b) => Ok(b),
            _ => Err(wrong_kind()),
        }
    }
}

fn wrong_kind() -> StoreError {
    StoreError::Storage("writer answered the wrong kind".into())
}

pub struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, StoreError>>,
}
