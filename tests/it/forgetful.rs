//! A file system that forgets (the idea of LazyFS): a FUSE file system, in memory, that keeps
//! every file's contents and every directory's entries twice, as they are now and as they were
//! when last synced (`fsync`/`fdatasync` for a file's contents, `fsync` of the directory for its
//! entries: a new, renamed or removed name is not durable until then). [`Cut`] is the power cut:
//! everything goes back to its synced state. Files are opened with direct I/O and nothing is
//! cached by the kernel, so what a process reads after a cut is what survived it.
//!
//! Written for `powercut_fs.rs` (the real `hookd` binary on it); mounted with fuse3's
//! `fusermount3`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

const ROOT: u64 = fuser::FUSE_ROOT_ID;
/// Nothing cached in the kernel: after a cut every lookup and attribute comes from here.
const TTL: Duration = Duration::ZERO;
const FOPEN_DIRECT_IO: u32 = 1;

enum Kind {
    File {
        now: Vec<u8>,
        synced: Vec<u8>,
    },
    Dir {
        now: BTreeMap<OsString, u64>,
        synced: BTreeMap<OsString, u64>,
    },
}

struct Node {
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Node>,
    next: u64,
    /// Syncs so far (files and directories), for the test's log.
    syncs: u64,
}

/// The file system; mount it with [`fuser::spawn_mount2`].
pub struct Forgetful(Arc<Mutex<State>>);

/// Cuts the power of a [`Forgetful`].
#[derive(Clone)]
pub struct Cut(Arc<Mutex<State>>);

impl Cut {
    /// Every file and directory back to what was last synced of it.
    pub fn cut(&self) {
        let mut state = self.0.lock().unwrap();
        for node in state.nodes.values_mut() {
            match &mut node.kind {
                Kind::File { now, synced } => now.clone_from(synced),
                Kind::Dir { now, synced } => now.clone_from(synced),
            }
        }
    }

    pub fn syncs(&self) -> u64 {
        self.0.lock().unwrap().syncs
    }
}

impl Forgetful {
    pub fn new() -> (Self, Cut) {
        let mut state = State {
            next: ROOT + 1,
            ..State::default()
        };
        // The mount point itself exists "durably": it is the disk.
        state.nodes.insert(
            ROOT,
            Node {
                kind: Kind::Dir {
                    now: BTreeMap::new(),
                    synced: BTreeMap::new(),
                },
                perm: 0o755,
                uid: 0,
                gid: 0,
            },
        );
        let shared = Arc::new(Mutex::new(state));
        (Self(shared.clone()), Cut(shared))
    }
}

fn attr(ino: u64, node: &Node) -> FileAttr {
    let (kind, size) = match &node.kind {
        Kind::File { now, .. } => (FileType::RegularFile, now.len() as u64),
        Kind::Dir { .. } => (FileType::Directory, 0),
    };
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: node.perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: node.uid,
        gid: node.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl State {
    fn entries(&mut self, dir: u64) -> Option<&mut BTreeMap<OsString, u64>> {
        match &mut self.nodes.get_mut(&dir)?.kind {
            Kind::Dir { now, .. } => Some(now),
            Kind::File { .. } => None,
        }
    }

    fn child(&mut self, dir: u64, name: &OsStr) -> Option<u64> {
        self.entries(dir)?.get(name).copied()
    }

    /// A new node named `name` in `parent`.
    fn make(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        kind: Kind,
        mode: u32,
    ) -> Result<u64, i32> {
        let ino = self.next;
        let entries = self.entries(parent).ok_or(libc::ENOTDIR)?;
        if entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        entries.insert(name.to_owned(), ino);
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                kind,
                perm: (mode & 0o7777) as u16,
                uid: req.uid(),
                gid: req.gid(),
            },
        );
        Ok(ino)
    }
}

impl Filesystem for Forgetful {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.0.lock().unwrap();
        match state.child(parent, name) {
            Some(ino) => reply.entry(&TTL, &attr(ino, &state.nodes[&ino]), 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let state = self.0.lock().unwrap();
        match state.nodes.get(&ino) {
            Some(node) => reply.attr(&TTL, &attr(ino, node)),
            None => reply.error(libc::ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut state = self.0.lock().unwrap();
        let Some(node) = state.nodes.get_mut(&ino) else {
            return reply.error(libc::ENOENT);
        };
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
        }
        node.uid = uid.unwrap_or(node.uid);
        node.gid = gid.unwrap_or(node.gid);
        if let (Some(size), Kind::File { now, .. }) = (size, &mut node.kind) {
            now.resize(usize::try_from(size).unwrap(), 0);
        }
        reply.attr(&TTL, &attr(ino, node));
    }

    fn mkdir(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.0.lock().unwrap();
        let kind = Kind::Dir {
            now: BTreeMap::new(),
            synced: BTreeMap::new(),
        };
        match state.make(req, parent, name, kind, mode) {
            Ok(ino) => reply.entry(&TTL, &attr(ino, &state.nodes[&ino]), 0),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.0.lock().unwrap();
        let kind = Kind::File {
            now: Vec::new(),
            synced: Vec::new(),
        };
        match state.make(req, parent, name, kind, mode) {
            Ok(ino) => reply.created(&TTL, &attr(ino, &state.nodes[&ino]), 0, 0, FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.0.lock().unwrap();
        match state.entries(parent).and_then(|e| e.remove(name)) {
            Some(_) => reply.ok(),
            None => reply.error(libc::ENOENT),
        }
    }

    fn rmdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.0.lock().unwrap();
        let Some(ino) = state.child(parent, name) else {
            return reply.error(libc::ENOENT);
        };
        if state.entries(ino).is_some_and(|e| !e.is_empty()) {
            return reply.error(libc::ENOTEMPTY);
        }
        drop(state);
        self.unlink(req, parent, name, reply);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut state = self.0.lock().unwrap();
        let Some(ino) = state.child(parent, name) else {
            return reply.error(libc::ENOENT);
        };
        if flags & libc::RENAME_NOREPLACE != 0 && state.child(newparent, newname).is_some() {
            return reply.error(libc::EEXIST);
        }
        if state.entries(newparent).is_none() {
            return reply.error(libc::ENOTDIR);
        }
        state.entries(parent).unwrap().remove(name);
        state
            .entries(newparent)
            .unwrap()
            .insert(newname.to_owned(), ino);
        reply.ok();
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut state = self.0.lock().unwrap();
        let Some(entries) = state.entries(newparent) else {
            return reply.error(libc::ENOTDIR);
        };
        if entries.contains_key(newname) {
            return reply.error(libc::EEXIST);
        }
        entries.insert(newname.to_owned(), ino);
        reply.entry(&TTL, &attr(ino, &state.nodes[&ino]), 0);
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let mut state = self.0.lock().unwrap();
        match state.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::File { now, .. }) => {
                if flags & libc::O_TRUNC != 0 {
                    now.clear();
                }
                reply.opened(0, FOPEN_DIRECT_IO);
            }
            Some(Kind::Dir { .. }) => reply.opened(0, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let state = self.0.lock().unwrap();
        match state.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::File { now, .. }) => {
                let from = usize::try_from(offset).unwrap().min(now.len());
                let to = (from + size as usize).min(now.len());
                reply.data(&now[from..to]);
            }
            Some(Kind::Dir { .. }) => reply.error(libc::EISDIR),
            None => reply.error(libc::ENOENT),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let mut state = self.0.lock().unwrap();
        match state.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::File { now, .. }) => {
                let at = usize::try_from(offset).unwrap();
                if now.len() < at + data.len() {
                    now.resize(at + data.len(), 0);
                }
                now[at..at + data.len()].copy_from_slice(data);
                reply.written(u32::try_from(data.len()).unwrap());
            }
            Some(Kind::Dir { .. }) => reply.error(libc::EISDIR),
            None => reply.error(libc::ENOENT),
        }
    }

    fn flush(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _lock_owner: u64,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.0.lock().unwrap();
        state.syncs += 1;
        match state.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::File { now, synced }) => synced.clone_from(now),
            Some(Kind::Dir { now, synced }) => synced.clone_from(now),
            None => return reply.error(libc::ENOENT),
        }
        reply.ok();
    }

    fn fsyncdir(
        &mut self,
        req: &Request<'_>,
        ino: u64,
        fh: u64,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync(req, ino, fh, datasync, reply);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut state = self.0.lock().unwrap();
        let Some(entries) = state.entries(ino) else {
            return reply.error(libc::ENOTDIR);
        };
        let entries: Vec<(OsString, u64)> = entries.iter().map(|(n, i)| (n.clone(), *i)).collect();
        let mut all = vec![
            (OsString::from("."), ino, FileType::Directory),
            (OsString::from(".."), ROOT, FileType::Directory),
        ];
        for (name, child) in entries {
            let kind = match state.nodes.get(&child).map(|n| &n.kind) {
                Some(Kind::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            all.push((name, child, kind));
        }
        for (i, (name, child, kind)) in all
            .into_iter()
            .enumerate()
            .skip(usize::try_from(offset).unwrap())
        {
            if reply.add(child, i64::try_from(i + 1).unwrap(), kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        // Plenty of room: hookd's headroom check must not refuse anything.
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&mut self, _req: &Request<'_>, _ino: u64, _mask: i32, reply: ReplyEmpty) {
        reply.ok();
    }
}
