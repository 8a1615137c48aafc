//! The commands that work on a data directory no daemon holds and need its master key:
//! `hookd token create` (the way back in) and `hookd rekey` (rotating the master key).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;

use super::{KEY_FILE, STORE_FILE};
use crate::config::{Config, Redacted};
use crate::files::sync_dir;
use crate::ids::{new_id, TOKEN_PREFIX};
use crate::model::{Scope, Token};
use crate::secrets::generate_token;
use crate::store::{offline, Store};
use crate::time::now_ms;
use crate::vault::{MasterKey, Vault, KEY_CHECK, TOKEN_KEY};

/// Where `hookd rekey` writes the new key before the store is re-sealed with it.
pub const NEW_KEY_FILE: &str = "master.key.new";

/// The store file of `config.data_dir`, checked to exist and to be free of any daemon.
fn free_store(config: &Config) -> Result<PathBuf, String> {
    let path = config.data_dir.join(STORE_FILE);
    if !path.is_file() {
        return Err(format!("{}: no store here", path.display()));
    }
    if offline::held(&path) {
        return Err(offline::in_use_message(&path));
    }
    Ok(path)
}

/// The master key in force: `HOOKD_MASTER_KEY` (or `master_key`), else the key file; with
/// whether it came from the key file.
fn current_key(config: &Config) -> Result<(MasterKey, bool), String> {
    if let Some(text) = config.master_key.as_ref().and_then(Redacted::expose) {
        let key = MasterKey::parse(text).map_err(|e| format!("HOOKD_MASTER_KEY {e}"))?;
        return Ok((key, false));
    }
    let file = config.data_dir.join(KEY_FILE);
    let text = fs::read_to_string(&file).map_err(|e| {
        format!(
            "{}: {e} (set HOOKD_MASTER_KEY to the store's master key)",
            file.display()
        )
    })?;
    let key = MasterKey::parse(&text).map_err(|e| format!("{} {e}", file.display()))?;
    Ok((key, true))
}

fn wrong_key(path: &Path) -> String {
    format!(
        "the master key is not the one {} was created with",
        path.display()
    )
}

/// Creates an API token in the store of `config.data_dir` while no daemon holds it: the way
/// back in when every admin token is lost, revoked or expired (`HOOKD_BOOTSTRAP_TOKEN` counts
/// only for a store with no token). Needs the store's master key (`HOOKD_MASTER_KEY` or the key
/// file); creates nothing else. Returns the token's id and plaintext.
///
/// # Errors
/// No store there, a running hookd holding it, a missing or wrong master key, a store error.
pub async fn create_token_offline(
    config: &Config,
    name: &str,
    scopes: Vec<Scope>,
) -> Result<(String, String), String> {
    let path = free_store(config)?;
    let vault = Vault::new(current_key(config)?.0);
    let options = crate::store::Options {
        max_batch: 1,
        cache_bytes: 1 << 20,
        min_free_bytes: 0,
        metrics: None,
        testing: None,
    };
    let store =
        Store::open_embedded(&path, options).map_err(|e| format!("{}: {e}", path.display()))?;
    let made = async {
        let sealed = store
            .meta(KEY_CHECK)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the store was never started; start hookd once instead")?;
        if !vault.opens_check(&sealed) {
            return Err(wrong_key(&path));
        }
        if let Some(sealed) = store.meta(TOKEN_KEY).await.map_err(|e| e.to_string())? {
            vault.adopt_token_key(&sealed).map_err(|e| e.to_string())?;
        }
        let rng = SystemRandom::new();
        let plaintext = generate_token(&rng).map_err(|e| e.to_string())?;
        let now = now_ms();
        let token = Token {
            id: new_id(TOKEN_PREFIX, now, &rng),
            name: name.to_owned(),
            scopes,
            hash: vault.token_hash(&plaintext).to_vec(),
            created_at_ms: now,
            expires_at_ms: None,
            last_used_at_ms: None,
        };
        let id = token.id.clone();
        store.create_token(token).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((id, plaintext))
    }
    .await;
    store.close(std::time::Duration::from_secs(10)).await;
    made
}

/// What `hookd rekey` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    pub endpoints: usize,
    /// Sealed values (secrets, header values, client keys, options) re-sealed.
    pub values: usize,
    /// The new key's file: `master.key` itself, or `master.key.new` when the old key came from
    /// `HOOKD_MASTER_KEY` (the operator puts it there).
    pub key_file: PathBuf,
    /// Where the old key file was kept (`None` when it came from `HOOKD_MASTER_KEY`).
    pub old_key_file: Option<PathBuf>,
    /// An interrupted rekey was finished (its re-sealing had committed).
    pub resumed: bool,
}

/// `hookd rekey`: a new master key for the store of `config.data_dir` (offline). Everything
/// sealed is re-sealed under it in one transaction, with the tokens' lookup key (token hashes
/// cannot be recomputed, so that key is kept, sealed under the new master key); then every
/// value is opened with the new key to verify, and only then is the key file replaced (the old
/// one is kept beside it as `master.key.old-<unix seconds>`).
///
/// Crash-safe: the new key is written and synced (`master.key.new`) before the transaction; a
/// crash before the commit leaves the store under the old key (run again: a fresh key), one
/// after it leaves `master.key.new` opening the store (run again: the files are swapped).
///
/// # Errors
/// No store, a daemon holding it, a wrong key, a value that does not open, an I/O error.
pub fn rekey(config: &Config) -> Result<Rekeyed, String> {
    let path = free_store(config)?;
    let dir = &config.data_dir;
    let (key, from_file) = current_key(config)?;
    let old = Vault::new(key);
    let new_file = dir.join(NEW_KEY_FILE);
    let db = offline::open_exclusive(&path)?;
    let check = db
        .meta(KEY_CHECK)?
        .ok_or("the store was never started; start hookd once instead")?;
    if !old.opens_check(&check) {
        // An earlier rekey committed and stopped before the key files were swapped.
        let text = fs::read_to_string(&new_file).map_err(|_| wrong_key(&path))?;
        let new = Vault::new(MasterKey::parse(&text).map_err(|_| wrong_key(&path))?);
        if !new.opens_check(&check) {
            return Err(wrong_key(&path));
        }
        let (endpoints, values) = verify(&db, &new)?;
        drop(db);
        let (key_file, old_key_file) = install(dir, from_file)?;
        return Ok(Rekeyed {
            endpoints,
            values,
            key_file,
            old_key_file,
            resumed: true,
        });
    }
    if let Some(sealed) = db.meta(TOKEN_KEY)? {
        old.adopt_token_key(&sealed).map_err(|e| e.to_string())?;
    }
    let rng = SystemRandom::new();
    let (key, text) = MasterKey::generate(&rng).map_err(|e| e.to_string())?;
    write_key(&new_file, &text)?;
    let new = Vault::new(key);
    let meta = [
        (KEY_CHECK, new.seal_check().map_err(|e| e.to_string())?),
        (
            TOKEN_KEY,
            old.token_key_for(&new).map_err(|e| e.to_string())?,
        ),
    ];
    db.rewrite_endpoints(|e| old.reseal(&new, e), &meta)?;
    let (endpoints, values) = verify(&db, &new)?;
    drop(db);
    let (key_file, old_key_file) = install(dir, from_file)?;
    Ok(Rekeyed {
        endpoints,
        values,
        key_file,
        old_key_file,
        resumed: false,
    })
}

/// Every sealed value opens under `new`; returns the endpoints and values counted.
fn verify(db: &offline::Exclusive, new: &Vault) -> Result<(usize, usize), String> {
    let check = db.meta(KEY_CHECK)?.unwrap_or_default();
    if !new.opens_check(&check) {
        return Err("verification: the store's key check does not open with the new key".into());
    }
    let sealed = db.meta(TOKEN_KEY)?.unwrap_or_default();
    new.adopt_token_key(&sealed)
        .map_err(|e| format!("verification: the tokens' lookup key: {e}"))?;
    let (mut endpoints, mut values) = (0, 0);
    db.each_endpoint(|e| {
        values += new.reseal(new, &mut e.clone())?;
        endpoints += 1;
        Ok(())
    })
    .map_err(|e| format!("verification: {e}"))?;
    Ok((endpoints, values))
}

/// Writes a key file (mode 0600), synced with its directory entry.
fn write_key(path: &Path, text: &str) -> Result<(), String> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()?;
            sync_dir(path)
        })
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Puts the new key in place of the key file (the old one kept beside it first, so a key file
/// exists at every moment), when the old key came from it.
fn install(dir: &Path, from_file: bool) -> Result<(PathBuf, Option<PathBuf>), String> {
    let (key, new) = (dir.join(KEY_FILE), dir.join(NEW_KEY_FILE));
    if !from_file {
        return Ok((new, None));
    }
    let secs = now_ms() / 1000;
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let mut n = 1;
    let old = loop {
        let old = match n {
            1 => dir.join(format!("{KEY_FILE}.old-{secs}")),
            n => dir.join(format!("{KEY_FILE}.old-{secs}-{n}")),
        };
        match fs::hard_link(&key, &old) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(io(&old, e)),
            Ok(()) => break old,
        }
    };
    fs::rename(&new, &key).map_err(|e| io(&key, e))?;
    sync_dir(&key).map_err(|e| io(dir, e))?;
    Ok((key, Some(old)))
}
