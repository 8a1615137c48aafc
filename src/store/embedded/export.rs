//! Reading a whole store out for `hookd migrate` (another backend takes it in): every endpoint,
//! token, `meta` entry, message, delivery and attempt, in that order, as the records stored.
//!
//! What only the embedded store needs stays behind: its schema version, and the deliveries and
//! attempts of endpoints already deleted (which its retention was still to clear).

use std::collections::HashSet;

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::offline::Exclusive;
use super::schema::{
    ATTEMPTS, DELIVERIES, ENDPOINTS, MESSAGES, MESSAGE_STATE, META, SCHEMA_VERSION, TOKENS,
};
use super::{decode, StoreError};
use crate::model::{Attempt, Delivery, Endpoint, Message, Token};
use crate::store::types::Moved;

/// The `meta` entry that only the embedded store reads.
const OWN_META: &str = "schema_version";

impl Exclusive {
    /// Hands every record to `out`, in one read transaction (a consistent view), until `out`
    /// returns `false` (the taker gave up). Returns how many records it left behind (those of
    /// deleted endpoints).
    ///
    /// # Errors
    /// The store is of an older schema (an older hookd wrote it and no newer one has opened
    /// it), a record is corrupt, or a storage error.
    pub fn export(&self, out: &mut dyn FnMut(Moved) -> bool) -> Result<u64, String> {
        self.export_all(out).map_err(|e| e.to_string())
    }

    fn export_all(&self, out: &mut dyn FnMut(Moved) -> bool) -> Result<u64, StoreError> {
        let txn = self.0.begin_read()?;
        let meta = txn.open_table(META)?;
        let version = meta.get(OWN_META)?.map(|v| v.value().to_vec());
        if version.as_deref() != Some([SCHEMA_VERSION].as_slice()) {
            return Err(StoreError::Storage(
                "the store was written by an older hookd: start this hookd on it once (it brings the store up to date), stop it, then migrate".into(),
            ));
        }
        let mut endpoints = HashSet::new();
        for entry in txn.open_table(ENDPOINTS)?.iter()? {
            let (k, v) = entry?;
            let endpoint: Endpoint = decode(k.value(), v.value())?;
            endpoints.insert(endpoint.id.clone());
            if !out(Moved::Endpoint(Box::new(endpoint), v.value().to_vec())) {
                return Ok(0);
            }
        }
        for entry in txn.open_table(TOKENS)?.iter()? {
            let (k, v) = entry?;
            let token: Token = decode(k.value(), v.value())?;
            if !out(Moved::Token(token, v.value().to_vec())) {
                return Ok(0);
            }
        }
        for entry in meta.iter()? {
            let (k, v) = entry?;
            if k.value() != OWN_META && !out(Moved::Meta(k.value().into(), v.value().to_vec())) {
                return Ok(0);
            }
        }
        let states = txn.open_table(MESSAGE_STATE)?;
        for entry in txn.open_table(MESSAGES)?.iter()? {
            let (k, v) = entry?;
            let message: Message = decode(k.value(), v.value())?;
            let ended = match states.get(k.value())?.map(|s| s.value()) {
                Some((0, ended)) => Some(i64::try_from(ended).unwrap_or(i64::MAX)),
                _ => None,
            };
            if !out(Moved::Message(message, v.value().to_vec(), ended)) {
                return Ok(0);
            }
        }
        let mut left = 0;
        for entry in txn.open_table(DELIVERIES)?.iter()? {
            let (k, v) = entry?;
            let delivery: Delivery = decode(k.value(), v.value())?;
            if !endpoints.contains(&delivery.endpoint_id) {
                left += 1;
            } else if !out(Moved::Delivery(delivery)) {
                return Ok(0);
            }
        }
        for entry in txn.open_table(ATTEMPTS)?.iter()? {
            let (k, v) = entry?;
            let attempt: Attempt = decode(k.value(), v.value())?;
            if !endpoints.contains(&attempt.endpoint_id) {
                left += 1;
            } else if !out(Moved::Attempt(attempt, v.value().to_vec())) {
                return Ok(0);
            }
        }
        Ok(left)
    }
}
