//! File modes: the data directory, the store, the key file and a backup hold credentials
//! (endpoint URLs, sealed secrets), so they are created private, loosened ones are tightened,
//! and a file just created is made durable with its directory entry.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700, its entry synced, or takes an existing directory's access
/// away from group and others, noting it in `loosened`. The store holds endpoint URLs, which
/// are often credentials themselves.
pub fn private_dir(dir: &Path, loosened: &mut Vec<String>) -> std::io::Result<()> {
    let new = !dir.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if new {
        // Its entry in the parent, made durable like a file's: the files synced into it later
        // would not survive a power cut that took the directory itself.
        sync_dir(dir)?;
    }
    restrict(dir, 0o700, loosened)
}

/// Creates `path` empty with mode 0600 if it does not exist (and makes its directory entry
/// durable), or takes an existing file's access away from group and others.
pub fn private_file(path: &Path, loosened: &mut Vec<String>) -> std::io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            file.sync_all()?;
            sync_dir(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path, 0o600, loosened),
        Err(e) => Err(e),
    }
}

pub fn restrict(path: &Path, mode: u32, loosened: &mut Vec<String>) -> std::io::Result<()> {
    let current = fs::metadata(path)?.permissions().mode();
    if current & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        loosened.push(format!("{} (was {:o})", path.display(), current & 0o777));
    }
    Ok(())
}

/// fsyncs the directory holding `path`, so a file just created there survives a crash.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })?
        .sync_all(),
        None => Ok(()),
    }
}
