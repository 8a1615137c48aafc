//! What the store's handles ask its writer to do ([`Op`]) and what they get back ([`Done`]);
//! the resource files send them, the writer applies each in its batch's transaction. The data
//! they carry is the boundary's ([`crate::store::types`]).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::StoreError;
use crate::model::{Endpoint, EndpointPatch, SealedSecret, Token};
use crate::routing::Matchers;

pub use crate::store::types::{AttemptRecord, EndpointEffect, Ingest, Report, Retention, Step};

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
    /// A durable commit, so that the commit log holds nothing to replay (at a clean stop).
    Checkpoint,
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
