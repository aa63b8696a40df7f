//! The directory layout and the file operations on it: atomic writes, reads, temporary files.
//!
//! ```text
//! <bucket dir>/
//!   entries-v2/            one directory per entry format version
//!     3f/                  fan-out: the first two hex digits of the key hash (256 directories)
//!       3fa2…e1            one file per entry, named by the key hash's 64 hex digits
//!       .tmp-4711-Xq3a9    a write in progress (or left by a crash): `.tmp-<pid>-<random>`
//! ```
//!
//! Every operation goes through the bucket's open directory handles (`Entries`, `dirfd.rs`), never through a path
//! resolved again: see the crate docs' Security section.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::warn;

use crate::block_hash::BlockHasher;
use crate::dirfd::{self, Dir, FileInfo};
use crate::error::{Error, Result};
use crate::key::KeyHash;

/// Name of the directory holding version-2 entries, under the bucket directory.
pub const ENTRIES_DIR: &str = "entries-v2";
/// Prefix of temporary files.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Default of [`BucketBuilder::max_entry_bytes`](crate::BucketBuilder::max_entry_bytes): 1 GiB. A file under an
/// entry's name that is larger is never read (it is corrupt: a miss).
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 1 << 30;

/// A bucket's directories, open: the bucket directory and its entries directory, each a verified handle (see
/// `dirfd.rs`), plus the read bound. Dereferences to the entries directory's path.
///
/// The handles are opened once; when the directories are removed or replaced while the bucket is open (an
/// `rm -r` of the cache), a write that finds its handle detached opens them again from the bucket's (absolute)
/// path, with the same checks, and `prune_directory` does so before it walks.
#[derive(Debug)]
pub(crate) struct Entries {
    root_path: PathBuf,
    entries_path: PathBuf,
    dirs: RwLock<Dirs>,
    max_entry_bytes: u64,
}

#[derive(Debug)]
struct Dirs {
    root: Arc<Dir>,
    entries: Arc<Dir>,
}

impl Deref for Entries {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.entries_path
    }
}

impl Entries {
    /// The largest entry file read (`BucketBuilder::max_entry_bytes`).
    pub(crate) fn max_entry_bytes(&self) -> u64 {
        self.max_entry_bytes
    }

    /// Opens the bucket at the absolute path `root` (created if missing), and its entries directory, creating it
    /// (mode 0700) if missing. A link or a directory of another user where the entries directory should be is
    /// refused.
    pub(crate) fn open(root: &Path, max_entry_bytes: u64) -> Result<Entries> {
        let dirs = open_dirs(root, true)?;
        Ok(Entries {
            root_path: root.to_path_buf(),
            entries_path: root.join(ENTRIES_DIR),
            dirs: RwLock::new(dirs),
            max_entry_bytes,
        })
    }

    /// The bucket directory's handle.
    pub(crate) fn root(&self) -> Arc<Dir> {
        Arc::clone(&self.dirs.read().unwrap_or_else(|p| p.into_inner()).root)
    }

    /// The entries directory's handle (one read lock and one reference count on the hit path).
    pub(crate) fn dir(&self) -> Arc<Dir> {
        Arc::clone(&self.dirs.read().unwrap_or_else(|p| p.into_inner()).entries)
    }

    /// Opens the directories again from the bucket's path (creating them with `create`) unless the handle held
    /// still names the entries directory.
    pub(crate) fn refresh(&self, create: bool) -> Result<()> {
        let held = self.dir().id();
        let now = fs::symlink_metadata(&self.entries_path).ok().map(|m| file_id(&m));
        if held.is_some() && held == now {
            return Ok(());
        }
        let dirs = open_dirs(&self.root_path, create)?;
        *self.dirs.write().unwrap_or_else(|p| p.into_inner()) = dirs;
        Ok(())
    }

    /// The fan-out directory `name`, created if missing; when the entries directory itself was removed meanwhile,
    /// the directories are opened (and created) again first.
    fn fan_out(&self, name: &str) -> Result<Dir> {
        match self.dir().sub_or_create(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.refresh(true)?;
                self.dir().sub_or_create(name)
            }
            other => other,
        }
        .map_err(|e| Error::io("open directory", self.entries_path.join(name), e))
    }
}

#[cfg(unix)]
fn file_id(m: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn open_dirs(root: &Path, create: bool) -> Result<Dirs> {
    if create {
        create_dir_private(root).map_err(|e| Error::io("create bucket directory", root, e))?;
    }
    let root_dir = Dir::open_root(root).map_err(|e| Error::io("open bucket directory", root, e))?;
    let entries_path = root.join(ENTRIES_DIR);
    let entries = if create {
        root_dir.sub_or_create(ENTRIES_DIR)
    } else {
        root_dir.sub(ENTRIES_DIR)
    };
    let entries = entries.map_err(|e| {
        if e.kind() != io::ErrorKind::NotFound {
            warn!(target: "bucketcache", path = %entries_path.display(), error = %e, "entries directory refused");
        }
        Error::io("open entries directory", &entries_path, e)
    })?;
    Ok(Dirs {
        root: Arc::new(root_dir),
        entries: Arc::new(entries),
    })
}

/// Whether writes are flushed to stable storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Write to a temporary file and rename it into place (the default). Readers never see a torn entry, and a
    /// crash of the process loses nothing; an operating-system crash or power loss may lose recent writes.
    #[default]
    Atomic,
    /// As `Atomic`, plus `fsync` of the file before the rename and of its directory after: a write that returned
    /// survives power loss. Several times slower per write.
    Fsync,
}

/// The path of the entry for `key` under `entries`.
pub fn entry_path(entries: &Path, key: &KeyHash) -> PathBuf {
    let hex = key.to_hex();
    let mut p = PathBuf::with_capacity(entries.as_os_str().len() + 68);
    p.push(entries);
    p.push(&hex[..2]);
    p.push(hex);
    p
}

/// Creates a directory and its parents, private to the user on Unix (0700).
pub(crate) fn create_dir_private(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Writes `bytes` as the entry for `key` atomically: a new temporary file (`O_CREAT | O_EXCL | O_NOFOLLOW`,
/// mode 0600) in the key's fan-out directory, renamed over the entry within that directory's handle. Creates the
/// fan-out directory when it is missing; refuses one that is a link or not ours.
pub(crate) fn write_atomic(entries: &Entries, key: &KeyHash, bytes: &[u8], durability: Durability) -> Result<()> {
    let mut tmp = TempEntry::create(entries, key)?;
    let written = tmp.file().write_all(bytes);
    tmp.check(written)?;
    tmp.commit(durability)
}

/// An entry being written: a new temporary file in the key's fan-out directory (created as [`write_atomic`]
/// creates it), renamed into place by [`TempEntry::commit`]. Dropped without a commit, the temporary file is
/// removed. Lets a large entry be streamed into its file instead of built in memory.
pub(crate) struct TempEntry {
    fan: Dir,
    file: File,
    name: String,
    hex: String,
    committed: bool,
}

impl TempEntry {
    /// Creates the temporary file for `key`'s entry.
    pub(crate) fn create(entries: &Entries, key: &KeyHash) -> Result<TempEntry> {
        let hex = key.to_hex();
        let fan = entries.fan_out(&hex[..2])?;
        let (file, name) = create_temp(&fan).map_err(|e| Error::io("create temporary file in", fan.path(), e))?;
        let tmp = TempEntry {
            fan,
            file,
            name,
            hex,
            committed: false,
        };
        let armed = fault::check(tmp.fan.path());
        tmp.check(armed)?;
        Ok(tmp)
    }

    /// The temporary file, to write the entry into.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Turns an I/O result of a write into this file into the crate's error (naming the file).
    pub(crate) fn check<T>(&self, r: io::Result<T>) -> Result<T> {
        r.map_err(|e| Error::io("write", self.fan.path().join(&self.name), e))
    }

    /// Flushes (with `Fsync`: to stable storage) and renames the file over the entry.
    pub(crate) fn commit(mut self, durability: Durability) -> Result<()> {
        if durability == Durability::Fsync {
            let synced = self.file.sync_all();
            self.check(synced)?;
        }
        self.fan
            .rename(&self.name, &self.hex)
            .map_err(|e| Error::io("rename into place", self.fan.path().join(&self.hex), e))?;
        self.committed = true;
        if durability == Durability::Fsync {
            self.fan
                .sync()
                .map_err(|e| Error::io("fsync directory", self.fan.path(), e))?;
        }
        Ok(())
    }
}

impl Drop for TempEntry {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.fan.remove(&self.name);
        }
    }
}

/// Payloads up to this size are encoded in memory and written with one call (their bytes are kept for the memory
/// and shared tiers); a larger payload is streamed into its temporary file, and read back through a stream.
pub(crate) const STREAM_AT: usize = 1 << 20;
/// The buffer between an encoder and the [`PayloadWriter`].
pub(crate) const ENCODE_BUF: usize = 8 * 1024;
/// The buffer between an encoder or decoder and a streamed entry's file.
const STREAM_BUF: usize = 1 << 20;

/// What [`EntryWriter::finish`] produced.
pub(crate) enum Written {
    /// A small entry, built in memory (header sealed), not yet on disk.
    Bytes(Vec<u8>),
    /// A large entry, streamed into its file and renamed into place; the file's length.
    InPlace(u64),
}

/// The writer a backend encodes a new entry into: the header prefix and the payload accumulate in memory until the
/// payload passes [`STREAM_AT`]; then a temporary file is created, the buffer written to it, and the rest streams
/// through a buffer of [`STREAM_BUF`] bytes while the payload is hashed. The header is written last, over its
/// placeholder, and the file renamed into place: memory stays bounded whatever the value's size.
pub(crate) struct EntryWriter<'a> {
    entries: &'a Entries,
    key: &'a KeyHash,
    /// The header prefix (with zero fields), then the payload while in memory; the spill buffer once streaming.
    buf: Vec<u8>,
    payload_at: usize,
    spill: Option<Spill>,
    /// The crate error behind an `io::Error` handed to the encoder.
    failed: Option<Error>,
}

struct Spill {
    tmp: TempEntry,
    header: Vec<u8>,
    /// The piecewise xxh3 sum (`entry::FLAG_XXH3`): fast enough to run beside the writes on this thread.
    sum: crate::entry::PieceSum,
    payload_len: u64,
}

impl<'a> EntryWriter<'a> {
    /// A writer for `key`'s entry whose header starts as `prefix` (see `entry::prefix`).
    pub(crate) fn new(entries: &'a Entries, key: &'a KeyHash, prefix: Vec<u8>) -> Self {
        let payload_at = prefix.len();
        EntryWriter {
            entries,
            key,
            buf: prefix,
            payload_at,
            spill: None,
            failed: None,
        }
    }

    /// The error that made a write fail, if it was ours (creating or writing the file) rather than the encoder's.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.failed.take()
    }

    fn fail(&mut self, e: Error) -> io::Error {
        let io = io::Error::other(e.to_string());
        self.failed = Some(e);
        io
    }

    /// Starts streaming: creates the temporary file and writes what was buffered.
    fn start_spill(&mut self) -> io::Result<()> {
        let mut tmp = match TempEntry::create(self.entries, self.key) {
            Ok(t) => t,
            Err(e) => return Err(self.fail(e)),
        };
        let mut sum = crate::entry::PieceSum::new();
        sum.update(&self.buf[self.payload_at..]);
        let r = tmp.file().write_all(&self.buf);
        if let Err(e) = tmp.check(r) {
            return Err(self.fail(e));
        }
        let header = self.buf[..self.payload_at].to_vec();
        let payload_len = (self.buf.len() - self.payload_at) as u64;
        self.buf.clear();
        self.spill = Some(Spill {
            tmp,
            header,
            sum,
            payload_len,
        });
        Ok(())
    }

    /// Writes the spill buffer to the file.
    fn flush_spill(&mut self) -> io::Result<()> {
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        spill.payload_len += self.buf.len() as u64;
        let r = spill.tmp.file().write_all(&self.buf);
        spill.sum.update(&self.buf);
        self.buf.clear();
        match spill.tmp.check(r) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Seals the entry (flags, payload length and checksums). A small one is returned as bytes; a streamed one gets
    /// its real header and is renamed into place.
    pub(crate) fn finish(mut self, flags: u8, durability: Durability) -> Result<Written> {
        let flags = flags | crate::entry::FLAG_XXH3;
        if let Err(e) = self.flush_spill() {
            let path = self.entries.to_path_buf();
            return Err(self.failed.take().unwrap_or_else(|| Error::io("write", path, e)));
        }
        let Some(mut spill) = self.spill.take() else {
            let payload_at = self.payload_at;
            let payload_len = (self.buf.len() - payload_at) as u64;
            let sum = crate::entry::payload_checksum(flags, &self.buf[payload_at..]);
            crate::entry::seal(&mut self.buf[..payload_at], flags, payload_len, &sum);
            return Ok(Written::Bytes(std::mem::take(&mut self.buf)));
        };
        let sum = std::mem::take(&mut spill.sum).finish();
        crate::entry::seal(&mut spill.header, flags, spill.payload_len, &sum);
        let file_len = spill.header.len() as u64 + spill.payload_len;
        let file = spill.tmp.file();
        let r = file
            .seek(io::SeekFrom::Start(0))
            .and_then(|_| file.write_all(&spill.header));
        spill.tmp.check(r)?;
        spill.tmp.commit(durability)?;
        Ok(Written::InPlace(file_len))
    }
}

impl Write for EntryWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.spill.is_none() {
            self.buf.extend_from_slice(data);
            if self.buf.len() - self.payload_at > STREAM_AT {
                self.start_spill()?;
            }
            return Ok(data.len());
        }
        if self.buf.len() + data.len() > STREAM_BUF {
            self.flush_spill()?;
        }
        if data.len() >= STREAM_BUF {
            // Large writes go straight to the file.
            let Some(spill) = self.spill.as_mut() else {
                return Ok(0);
            };
            spill.sum.update(data);
            spill.payload_len += data.len() as u64;
            let r = spill.tmp.file().write_all(data);
            if let Err(e) = spill.tmp.check(r) {
                return Err(self.fail(e));
            }
        } else {
            if self.buf.capacity() < STREAM_BUF {
                self.buf.reserve_exact(STREAM_BUF - self.buf.len());
            }
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// zstd compression of payloads whose encoding reaches `min_bytes` (feature `zstd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    pub level: i32,
    pub min_bytes: usize,
}

/// The writer a backend encodes a value into: the encoding goes to an [`EntryWriter`], through a zstd encoder
/// once it reaches the compression threshold (when compression is on). A compressed payload is the zstd frame,
/// then the encoding's length (u64 LE), and the header gets [`FLAG_ZSTD`](crate::entry::FLAG_ZSTD).
pub(crate) struct PayloadWriter<'a> {
    state: PayloadState<'a>,
    raw_len: u64,
}

enum PayloadState<'a> {
    Plain(EntryWriter<'a>),
    /// Compression is on; the encoding so far, below the threshold.
    #[cfg(feature = "zstd")]
    Pending(EntryWriter<'a>, Vec<u8>, Compression),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::write::Encoder<'static, EntryWriter<'a>>),
    /// A failed switch to compression lost the writer (its temporary file is removed).
    #[cfg(feature = "zstd")]
    Failed,
}

impl<'a> PayloadWriter<'a> {
    /// A writer into `out`, compressing with `compression` when given (ignored without the feature `zstd`).
    pub(crate) fn new(out: EntryWriter<'a>, compression: Option<Compression>) -> Self {
        #[cfg(feature = "zstd")]
        let state = match compression {
            Some(c) => PayloadState::Pending(out, Vec::new(), c),
            None => PayloadState::Plain(out),
        };
        #[cfg(not(feature = "zstd"))]
        let state = {
            let _ = compression;
            PayloadState::Plain(out)
        };
        PayloadWriter { state, raw_len: 0 }
    }

    /// The error that made a write fail, if it was ours (creating or writing the file) rather than the encoder's.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        match &mut self.state {
            PayloadState::Plain(w) => w.take_error(),
            #[cfg(feature = "zstd")]
            PayloadState::Pending(w, ..) => w.take_error(),
            #[cfg(feature = "zstd")]
            PayloadState::Zstd(enc) => enc.get_mut().take_error(),
            #[cfg(feature = "zstd")]
            PayloadState::Failed => None,
        }
    }

    /// Completes the payload and the entry (see [`EntryWriter::finish`]).
    pub(crate) fn finish(self, durability: Durability) -> Result<Written> {
        #[cfg(feature = "zstd")]
        fn failed(w: &mut EntryWriter<'_>, e: io::Error) -> Error {
            let path = w.entries.to_path_buf();
            w.take_error().unwrap_or_else(|| Error::io("write", path, e))
        }
        match self.state {
            PayloadState::Plain(w) => w.finish(0, durability),
            #[cfg(feature = "zstd")]
            PayloadState::Pending(mut w, buf, _) => match w.write_all(&buf) {
                Ok(()) => w.finish(0, durability),
                Err(e) => Err(failed(&mut w, e)),
            },
            #[cfg(feature = "zstd")]
            PayloadState::Zstd(enc) => {
                let mut w = enc
                    .finish()
                    .map_err(|e| Error::io("compress", PathBuf::from("(entry)"), e))?;
                match w.write_all(&self.raw_len.to_le_bytes()) {
                    Ok(()) => w.finish(crate::entry::FLAG_ZSTD, durability),
                    Err(e) => Err(failed(&mut w, e)),
                }
            }
            #[cfg(feature = "zstd")]
            PayloadState::Failed => Err(Error::io(
                "compress",
                PathBuf::from("(entry)"),
                io::Error::other("the compressor could not start"),
            )),
        }
    }
}

impl Write for PayloadWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = match &mut self.state {
            PayloadState::Plain(w) => w.write(data)?,
            #[cfg(feature = "zstd")]
            PayloadState::Pending(_, buf, c) => {
                buf.extend_from_slice(data);
                if buf.len() >= c.min_bytes {
                    let PayloadState::Pending(w, buf, c) = std::mem::replace(&mut self.state, PayloadState::Failed)
                    else {
                        return Err(io::Error::other("compression state lost"));
                    };
                    let mut enc = zstd::stream::write::Encoder::new(w, c.level)?;
                    enc.write_all(&buf)?;
                    self.state = PayloadState::Zstd(enc);
                }
                data.len()
            }
            #[cfg(feature = "zstd")]
            PayloadState::Zstd(enc) => enc.write(data)?,
            #[cfg(feature = "zstd")]
            PayloadState::Failed => return Err(io::Error::other("the compressor could not start")),
        };
        self.raw_len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The payload checksum of a streamed load, as the entry's flags say: the piecewise xxh3 sum on this thread, or, for
/// an entry written before it, blake3 (on a helper thread past [`HASH_HELPER_AFTER`]).
enum PayloadSum {
    Xxh3(crate::entry::PieceSum),
    Blake3(Box<BlockHasher>),
}

/// A reader that checksums and counts every byte read through it: a streamed payload is verified as it is decoded.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: PayloadSum,
    count: u64,
    /// The first I/O error met (the decoder may hide it behind its own error).
    error: Option<io::ErrorKind>,
    /// An emptied block for [`HashingReader::read_block`], back from the hasher.
    spare: Vec<u8>,
}

impl<R: Read> HashingReader<R> {
    /// A reader of the payload of an entry with `flags` (they choose the checksum).
    pub(crate) fn new(inner: R, flags: u8) -> Self {
        let hasher = if flags & crate::entry::FLAG_XXH3 != 0 {
            PayloadSum::Xxh3(crate::entry::PieceSum::new())
        } else {
            PayloadSum::Blake3(Box::new(BlockHasher::new(blake3::Hasher::new(), HASH_HELPER_AFTER)))
        };
        HashingReader {
            inner,
            hasher,
            count: 0,
            error: None,
            spare: Vec::new(),
        }
    }

    /// Reads up to `max` bytes (fewer only at the end of `inner`) into an owned block, shows them to `take`, then
    /// hashes the block: once the helper runs, the block itself moves to it (no copy) and an emptied one comes
    /// back for the next read. Returns how many bytes were read (0 at the end).
    pub(crate) fn read_block(&mut self, max: usize, take: impl FnOnce(&[u8])) -> io::Result<usize> {
        // A block back from the hasher keeps its length: only bytes never used before are zeroed.
        let mut block = std::mem::take(&mut self.spare);
        block.resize(max, 0);
        let mut filled = 0;
        while filled < max {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error.get_or_insert(e.kind());
                    return Err(e);
                }
            }
        }
        block.truncate(filled);
        take(&block);
        self.count += filled as u64;
        self.spare = match &mut self.hasher {
            PayloadSum::Xxh3(sum) => {
                sum.update(&block);
                block
            }
            PayloadSum::Blake3(h) => h.update_owned_keep(block),
        };
        Ok(filled)
    }

    /// Reads the rest of `inner` through the hash; returns how many bytes that was.
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    /// Bytes read so far, the payload checksum of them (`None` if the hashing thread failed: not a match), and the
    /// I/O error met, if any.
    pub(crate) fn finish(self) -> (u64, Option<[u8; 32]>, Option<io::ErrorKind>) {
        let sum = match self.hasher {
            PayloadSum::Xxh3(sum) => Some(sum.finish()),
            PayloadSum::Blake3(h) => (*h).finalize(),
        };
        (self.count, sum, self.error)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                match &mut self.hasher {
                    PayloadSum::Xxh3(sum) => sum.update(&buf[..n]),
                    PayloadSum::Blake3(h) => h.update(&buf[..n]),
                }
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.error.get_or_insert(e.kind());
                }
                Err(e)
            }
        }
    }
}

/// Streamed payload bytes after which their checksum is computed on a helper thread, beside the encoding or decoding.
const HASH_HELPER_AFTER: u64 = 4 << 20;

/// A buffered reader of [`STREAM_BUF`] bytes over `inner`.
pub(crate) fn stream_reader<R: Read>(inner: R) -> io::BufReader<R> {
    io::BufReader::with_capacity(STREAM_BUF, inner)
}

/// Writes many entries atomically, each as [`write_atomic`] does, grouped by fan-out directory: each directory is
/// opened once for its group, and with [`Durability::Fsync`] synced once after its group's renames (each file is
/// still synced before its rename). Large batches are written by a few threads, each taking whole groups
/// ([`set_batch_threads`]). `items` are (key, entry bytes); the result has one outcome per item, in order.
pub(crate) fn write_batch(entries: &Entries, items: &[(KeyHash, &[u8])], durability: Durability) -> Vec<Result<()>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by_key(|&i| items[i].0 .0[0]);
    let groups: Vec<&[usize]> = order.chunk_by(|&a, &b| items[a].0 .0[0] == items[b].0 .0[0]).collect();
    let mut out: Vec<Option<Result<()>>> = (0..items.len()).map(|_| None).collect();
    let threads = batch_threads(items.len()).min(groups.len());
    let write_groups = |groups: &[&[usize]]| -> Vec<(usize, Result<()>)> {
        groups
            .iter()
            .flat_map(|g| write_group(entries, items, g, durability))
            .collect()
    };
    if threads <= 1 {
        for (i, r) in write_groups(&groups) {
            out[i] = Some(r);
        }
    } else {
        std::thread::scope(|scope| {
            let mut inline = Vec::new();
            let mut handles = Vec::new();
            for chunk in groups.chunks(groups.len().div_ceil(threads)) {
                match std::thread::Builder::new()
                    .name("bucketcache-batch".into())
                    .spawn_scoped(scope, move || write_groups(chunk))
                {
                    Ok(h) => handles.push(h),
                    // No thread: this one writes the chunk.
                    Err(_) => inline.push(chunk),
                }
            }
            for chunk in inline {
                for (i, r) in write_groups(chunk) {
                    out[i] = Some(r);
                }
            }
            for h in handles {
                // A writer thread that panicked leaves its items unset: reported below as not written.
                if let Ok(done) = h.join() {
                    for (i, r) in done {
                        out[i] = Some(r);
                    }
                }
            }
        });
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::io(
                    "write",
                    entries.entries_path.clone(),
                    io::Error::other("not written"),
                ))
            })
        })
        .collect()
}

/// Threads for a batch write: 0 means the default (up to 4, as the machine has cores, for batches of at least 256).
static BATCH_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets how many threads write a large batch (`DeferredWriteBucket::sync`, the end of `deferred_calls`); 0 restores
/// the default (up to 4, as many as the machine has cores, for batches of at least 256 entries). For benchmarks.
#[doc(hidden)]
pub fn set_batch_threads(n: usize) {
    BATCH_THREADS.store(n, std::sync::atomic::Ordering::Relaxed);
}

fn batch_threads(len: usize) -> usize {
    match BATCH_THREADS.load(std::sync::atomic::Ordering::Relaxed) {
        0 if len >= 256 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        0 => 1,
        n => n,
    }
}

/// One fan-out directory's share of [`write_batch`]: the directory opened once, each item written into it, the
/// directory synced once with [`Durability::Fsync`].
fn write_group(
    entries: &Entries,
    items: &[(KeyHash, &[u8])],
    group: &[usize],
    durability: Durability,
) -> Vec<(usize, Result<()>)> {
    let Some(&first) = group.first() else {
        return Vec::new();
    };
    let hex0 = items[first].0.to_hex();
    let fan = match entries.fan_out(&hex0[..2]) {
        Ok(fan) => fan,
        Err(e) => {
            return group
                .iter()
                .map(|&i| {
                    (
                        i,
                        Err(Error::io(
                            "open directory",
                            entries.entries_path.join(&hex0[..2]),
                            io_of(&e),
                        )),
                    )
                })
                .collect();
        }
    };
    let mut out: Vec<(usize, Result<()>)> = group
        .iter()
        .map(|&i| (i, write_into(&fan, &items[i].0.to_hex(), items[i].1, durability)))
        .collect();
    if durability == Durability::Fsync && out.iter().any(|(_, r)| r.is_ok()) {
        if let Err(e) = fan.sync() {
            for (_, r) in out.iter_mut().filter(|(_, r)| r.is_ok()) {
                *r = Err(Error::io(
                    "fsync directory",
                    fan.path(),
                    io::Error::new(e.kind(), e.to_string()),
                ));
            }
        }
    }
    out
}

/// An `io::Error` standing for `e` (for the other items of a group whose directory could not be opened).
fn io_of(e: &Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// One write of [`write_batch`] into an open fan-out directory: temporary file, contents, fsync if asked, rename.
fn write_into(fan: &Dir, hex: &str, bytes: &[u8], durability: Durability) -> Result<()> {
    let (mut tmp, tmp_name) = create_temp(fan).map_err(|e| Error::io("create temporary file in", fan.path(), e))?;
    let written = fault::check(fan.path())
        .and_then(|()| tmp.write_all(bytes))
        .and_then(|()| {
            if durability == Durability::Fsync {
                tmp.sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| Error::io("write", fan.path().join(&tmp_name), e))
        .and_then(|()| {
            fan.rename(&tmp_name, hex)
                .map_err(|e| Error::io("rename into place", fan.path().join(hex), e))
        });
    if written.is_err() {
        drop(tmp);
        let _ = fan.remove(&tmp_name);
    }
    written
}

/// A new temporary file `.tmp-<pid>-<8 random letters>` in `dir`.
fn create_temp(dir: &Dir) -> io::Result<(File, String)> {
    use std::hash::{BuildHasher, Hasher};
    let pid = std::process::id();
    let mut last = None;
    for attempt in 0u32..16 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let mut bits = h.finish();
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut name = format!("{TEMP_PREFIX}{pid}-");
        for _ in 0..8 {
            name.push(char::from(ALPHABET[(bits % ALPHABET.len() as u64) as usize]));
            bits /= ALPHABET.len() as u64;
        }
        match dir.create_new(&name) {
            Ok(f) => return Ok((f, name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// Fault injection at the write seam, for tests of disk-full and I/O-error handling. Inert unless armed: an unarmed
/// write pays one relaxed atomic load.
#[doc(hidden)]
pub mod fault {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    static ARMED: AtomicBool = AtomicBool::new(false);
    static FAULTS: Mutex<Vec<(PathBuf, i32)>> = Mutex::new(Vec::new());

    /// Makes every entry write under `dir` fail with the OS error `errno` (e.g. 28, `ENOSPC`) after its temporary
    /// file is created, as a full disk would; `None` clears it. Applies to every bucket in the process.
    pub fn set_write_error(dir: &Path, errno: Option<i32>) {
        let mut faults = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        faults.retain(|(d, _)| d != dir);
        if let Some(errno) = errno {
            faults.push((dir.to_path_buf(), errno));
        }
        ARMED.store(!faults.is_empty(), Ordering::Release);
    }

    pub(crate) fn check(dir: &Path) -> io::Result<()> {
        if !ARMED.load(Ordering::Acquire) {
            return Ok(());
        }
        let faults = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        match faults.iter().find(|(d, _)| dir.starts_with(d)) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}

/// Bytes read by the first `read` of an entry file: most entries fit, so a hit costs open, fstat, one read, close.
const FIRST_READ: u64 = 8 * 1024;

/// Why a file under an entry's name is not read at all.
pub(crate) fn refuse_reason(info: &FileInfo, max_entry_bytes: u64) -> Option<String> {
    if info.len > max_entry_bytes {
        Some(format!(
            "{} bytes, more than the largest entry read ({max_entry_bytes} bytes, `BucketBuilder::max_entry_bytes`)",
            info.len
        ))
    } else if dirfd::looks_sparse(info) {
        Some(format!(
            "a sparse file ({} bytes long, {} bytes on disk)",
            info.len,
            info.allocated.unwrap_or(0)
        ))
    } else {
        None
    }
}

/// Reads an open entry file of `info.len` bytes: its header first, and the rest only when the header declares
/// exactly the file's length. Memory is bounded by the file's real size (which the caller bounded), never by a
/// header's claim; a file whose header is invalid or disagrees with its size is not read past its header, and
/// what was read is returned for `entry::verify` to reject.
pub(crate) fn read_bounded(file: &mut File, info: &FileInfo) -> io::Result<Vec<u8>> {
    let len = info.len;
    let first = len.min(FIRST_READ);
    let mut buf = Vec::with_capacity(first as usize);
    (&mut *file).take(first).read_to_end(&mut buf)?;
    if matches!(
        crate::entry::parse_header(&buf),
        Err(crate::entry::Corrupt::TooShort { .. })
    ) && (buf.len() as u64) < len
    {
        let more = len
            .min(crate::entry::MAX_HEADER_LEN as u64)
            .saturating_sub(buf.len() as u64);
        (&mut *file).take(more).read_to_end(&mut buf)?;
    }
    match crate::entry::parse_header(&buf) {
        Ok(h) if h.file_len() == len && (buf.len() as u64) < len => {
            buf.reserve_exact((len - buf.len() as u64) as usize);
            // A byte more than declared, to see a file that grew.
            (&mut *file).take(len - buf.len() as u64 + 1).read_to_end(&mut buf)?;
        }
        _ => {}
    }
    Ok(buf)
}

/// Reads the entry file of `key` whole; `Ok(None)` when there is none, or when what is there is no entry that could
/// be read safely (see [`open_file`]).
pub(crate) fn read_file(entries: &Entries, key: &KeyHash) -> Result<Option<Vec<u8>>> {
    let Some((mut file, info)) = open_file(entries, key)? else {
        return Ok(None);
    };
    read_bounded(&mut file, &info)
        .map(Some)
        .map_err(|e| Error::io("read entry", entry_path(entries, key), e))
}

/// Opens the entry file of `key` for reading; `Ok(None)` when there is none, or when what is there is no entry that
/// could be read safely (a link, a FIFO or other non-regular file, a file over the size bound, a sparse file): those
/// are logged at `warn` and read as a miss, and the next write replaces them.
pub(crate) fn open_file(entries: &Entries, key: &KeyHash) -> Result<Option<(File, FileInfo)>> {
    let hex = key.to_hex();
    let (file, info) = match entries.dir().open_read_in(&hex[..2], &hex) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(Error::io("read entry", entry_path(entries, key), e))
        }
        Err(e) => {
            warn!(target: "bucketcache", hash = %key, error = %e, "unusable file under an entry's name read as a miss; the next write replaces it");
            return Ok(None);
        }
    };
    if let Some(why) = refuse_reason(&info, entries.max_entry_bytes) {
        warn!(target: "bucketcache", path = %entry_path(entries, key).display(), why, "entry file not read: read as a miss; the next write replaces it");
        return Ok(None);
    }
    Ok(Some((file, info)))
}

/// Reads the header bytes of the entry of `key` (see `scan::read_header_from`) and the file's length.
pub(crate) fn read_header_bytes(entries: &Entries, key: &KeyHash) -> io::Result<(Vec<u8>, u64)> {
    let hex = key.to_hex();
    let (mut file, info) = entries.dir().open_read_in(&hex[..2], &hex)?;
    let prefix = crate::scan::read_header_from(&mut file, info.len)?;
    Ok((prefix, info.len))
}

/// Removes the entry file of `key` (a link there is removed itself); `Ok(false)` when there was none.
pub(crate) fn remove_file(entries: &Entries, key: &KeyHash) -> Result<bool> {
    let hex = key.to_hex();
    let fan = match entries.dir().sub(&hex[..2]) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("remove entry", entry_path(entries, key), e)),
    };
    match fan.remove(&hex) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove entry", entry_path(entries, key), e)),
    }
}

/// Whether `name` has the exact shape of a temporary file the bucket writes: `.tmp-<pid>-<letters and digits>`.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let Some((pid, tail)) = rest.split_once('-') else {
        return false;
    };
    !pid.is_empty()
        && pid.len() <= 10
        && pid.bytes().all(|b| b.is_ascii_digit())
        && (1..=32).contains(&tail.len())
        && tail.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `name` has the exact shape of an entry file: 64 lowercase hex digits.
pub fn is_entry_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` is a fan-out directory's: two lowercase hex digits.
pub fn is_fan_out_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pid a temporary file's name carries, if it is one of ours.
pub fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

/// Whether a temporary file may be removed: its writer is gone, or it is older than `max_age`. `info` is what
/// `lstat` says about it, if anything.
pub(crate) fn temp_is_stale(info: Option<&FileInfo>, name: &str, max_age: std::time::Duration) -> bool {
    let old = info
        .and_then(|i| i.modified)
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= max_age);
    old || temp_file_pid(name).is_some_and(|pid| !process_alive(pid))
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Without a cheap liveness check, only age makes a temporary file stale.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid() {
        assert_eq!(temp_file_pid(".tmp-4711-abcdEFGH"), Some(4711));
        assert_eq!(temp_file_pid("3fa2"), None);
        assert_eq!(temp_file_pid(".tmp-x-y"), None);
    }

    #[test]
    fn only_exact_shapes_are_bucket_names() {
        assert!(is_temp_name(".tmp-4711-abcdEFGH"));
        for n in [
            ".tmp-",
            ".tmp-1-",
            ".tmp-x-ab",
            ".tmp-1-a/b",
            ".tmp-1-a.b",
            ".tmp-12345678901-a",
            "tmp-1-a",
        ] {
            assert!(!is_temp_name(n), "{n}");
        }
        assert!(is_entry_name(&"ab".repeat(32)));
        assert!(!is_entry_name(&"AB".repeat(32)));
        assert!(!is_entry_name(&"ab".repeat(31)));
        assert!(is_fan_out_name("0f") && !is_fan_out_name("0F") && !is_fan_out_name("abc"));
    }

    #[test]
    fn entry_paths_fan_out_by_the_first_byte() {
        let k = KeyHash([0xab; 32]);
        let p = entry_path(Path::new("/c/entries-v2"), &k);
        assert_eq!(p, Path::new("/c/entries-v2/ab").join("ab".repeat(32)));
    }
}
