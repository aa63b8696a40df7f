//! Directory handles: every file operation of a bucket happens relative to an open, verified directory, never by
//! a path resolved again later.
//!
//! A [`Dir`] is opened with `O_DIRECTORY | O_NOFOLLOW` (a symbolic link where a directory should be is refused,
//! never followed) and checked with `fstat` to be a directory owned by the current user (or by root). Its files are
//! listed, opened, created, renamed and removed with the `*at` calls on that handle, and opened with `O_NOFOLLOW`,
//! so a directory swapped for a link during a walk, or a link planted under a file's name, can never make the
//! bucket read, write or remove a file outside it: the handle keeps naming the directory that was checked.
//!
//! On Unix this uses [`rustix`], whose safe `*at` wrappers return `OwnedFd`s (the workspace denies `unsafe`); on
//! Linux an entry is opened in one `openat2` call beneath the entries directory with `RESOLVE_NO_SYMLINKS`, so a
//! read costs no more system calls than a path-based open. Elsewhere (Windows) a portable fallback resolves paths
//! under the directory's path, with a `symlink_metadata` check before each use: weaker against races, documented
//! in the crate docs' Security section.

use std::io;
use std::path::Path;
use std::time::SystemTime;

/// What `fstat` says about an open file (or `lstat` about a name).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) struct FileInfo {
    /// Size in bytes.
    pub len: u64,
    /// Bytes actually allocated on disk, where the platform says (`st_blocks * 512`).
    pub allocated: Option<u64>,
    pub is_file: bool,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub modified: Option<SystemTime>,
    /// Device and inode, to tell whether a name still names an open file.
    pub id: (u64, u64),
}

/// The error for a symbolic link where a directory or file of the bucket should be.
pub(crate) fn symlink_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "`{}` is a symbolic link where the bucket expects its own directory or file; it is not followed (it may \
         point outside the bucket): remove it",
        path.display()
    ))
}

/// An operation's error on a path, formatted "`path`: error" when displayed. Built for every miss (a missing
/// entry file is `NotFound`), so the message is written only if someone reads it: formatting it eagerly was a
/// fifth of a miss's instructions (`examples/hot_hit.rs miss` under callgrind).
#[derive(Debug)]
pub(crate) struct PathError {
    path: std::path::PathBuf,
    source: io::Error,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.path.display(), self.source)
    }
}

// No `source()`: the message already includes the OS error, and a chain printer (`{:#}`) would repeat it (the
// eager message this replaced had no source either).
impl std::error::Error for PathError {}

/// `source` on `path`, of the same kind.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn path_error(path: std::path::PathBuf, source: io::Error) -> io::Error {
    io::Error::new(source.kind(), PathError { path, source })
}

#[cfg_attr(not(unix), allow(dead_code))]
fn not_ours(path: &Path, owner: u32, me: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "`{}` is owned by uid {owner}, not by this user (uid {me}); the bucket does not use it: remove it, or \
             `chown` it to this user",
            path.display()
        ),
    )
}

#[cfg(unix)]
mod imp {
    use super::{not_ours, path_error, symlink_error, FileInfo};
    use std::ffi::OsStr;
    use std::fs::File;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

    /// An open, verified directory.
    #[derive(Debug)]
    pub(crate) struct Dir {
        fd: OwnedFd,
        path: PathBuf,
    }

    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn info(st: &rfs::Stat) -> FileInfo {
        let kind = rfs::FileType::from_raw_mode(st.st_mode as _);
        let mtime = i64::try_from(st.st_mtime).unwrap_or(0);
        let modified = u64::try_from(mtime)
            .ok()
            .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
        FileInfo {
            len: u64::try_from(st.st_size).unwrap_or(0),
            allocated: u64::try_from(st.st_blocks).ok().map(|b| b.saturating_mul(512)),
            is_file: kind == rfs::FileType::RegularFile,
            is_dir: kind == rfs::FileType::Directory,
            is_symlink: kind == rfs::FileType::Symlink,
            modified,
            id: (st.st_dev as u64, st.st_ino as u64),
        }
    }

    #[allow(clippy::unnecessary_cast)]
    fn owner(st: &rfs::Stat) -> u32 {
        st.st_uid as u32
    }

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// Whether a file of this owner may be trusted: ours, or root's (which no other user can plant).
    fn trusted_owner(uid: u32) -> bool {
        uid == me() || uid == 0
    }

    fn dir_flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
    }

    /// The mode bits of a directory (for the permission warning).
    pub(crate) fn mode_of(path: &Path) -> io::Result<u32> {
        let st = rfs::stat(path)?;
        #[allow(clippy::unnecessary_cast)]
        Ok(st.st_mode as u32 & 0o7777)
    }

    impl Dir {
        /// Opens the directory at `path` (links in its parents are followed: the path is the caller's choice; the
        /// last component must not be a link) and checks that it is a directory owned by this user or root.
        pub fn open(path: &Path) -> io::Result<Dir> {
            let fd = match rfs::open(path, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => return Err(explain(e, || rfs::lstat(path).ok(), path)),
            };
            Dir::verified(fd, path.to_path_buf())
        }

        /// Opens the bucket's own directory, following links in all of `path` (the user chose it); checks that it
        /// is a directory, not who owns it.
        pub fn open_root(path: &Path) -> io::Result<Dir> {
            let fd = rfs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Dir {
                fd,
                path: path.to_path_buf(),
            })
        }

        fn verified(fd: OwnedFd, path: PathBuf) -> io::Result<Dir> {
            let st = rfs::fstat(&fd)?;
            let i = info(&st);
            if !i.is_dir {
                return Err(io::Error::other(format!("`{}` is not a directory", path.display())));
            }
            if !trusted_owner(owner(&st)) {
                return Err(not_ours(&path, owner(&st), me()));
            }
            Ok(Dir { fd, path })
        }

        /// The directory's path (for messages and for callers that need one; never used to reach its files).
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The directory's device and inode.
        #[allow(clippy::unnecessary_cast)]
        pub fn id(&self) -> Option<(u64, u64)> {
            rfs::fstat(&self.fd).ok().map(|st| (st.st_dev as u64, st.st_ino as u64))
        }

        /// Opens the sub-directory `name`, refusing a link, a non-directory and a directory of another user.
        pub fn sub(&self, name: &str) -> io::Result<Dir> {
            let path = self.path.join(name);
            match rfs::openat(&self.fd, name, dir_flags(), Mode::empty()) {
                Ok(fd) => Dir::verified(fd, path),
                Err(e) => Err(explain(
                    e,
                    || rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok(),
                    &path,
                )),
            }
        }

        /// As [`sub`](Self::sub), creating the directory (mode 0700) when it is missing.
        pub fn sub_or_create(&self, name: &str) -> io::Result<Dir> {
            match self.sub(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match rfs::mkdirat(&self.fd, name, Mode::RWXU) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.sub(name)
                }
                other => other,
            }
        }

        /// The names in the directory (`.` and `..` left out).
        pub fn list(&self) -> io::Result<Vec<std::ffi::OsString>> {
            let mut out = Vec::new();
            for item in rfs::Dir::read_from(&self.fd)? {
                let item = item?;
                let name = item.file_name().to_bytes();
                if name != b"." && name != b".." {
                    out.push(OsStr::from_bytes(name).to_os_string());
                }
            }
            Ok(out)
        }

        /// Opens the file `name` for reading: never through a link, never blocking (a FIFO), and only if it is a
        /// regular file.
        pub fn open_read(&self, name: &str) -> io::Result<(File, FileInfo)> {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = rfs::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| {
                explain(
                    e,
                    || rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok(),
                    &self.path.join(name),
                )
            })?;
            regular(fd, || self.path.join(name))
        }

        /// Opens `fan/name` for reading in one call where the kernel allows it (`openat2` beneath this directory,
        /// no link anywhere), else through [`sub`](Self::sub) and [`open_read`](Self::open_read).
        pub fn open_read_in(&self, fan: &str, name: &str) -> io::Result<(File, FileInfo)> {
            #[cfg(target_os = "linux")]
            {
                use std::sync::atomic::{AtomicBool, Ordering};
                static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
                if !NO_OPENAT2.load(Ordering::Relaxed) {
                    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                    let resolve = rfs::ResolveFlags::BENEATH
                        | rfs::ResolveFlags::NO_SYMLINKS
                        | rfs::ResolveFlags::NO_MAGICLINKS
                        | rfs::ResolveFlags::NO_XDEV;
                    let rel = format!("{fan}/{name}");
                    match rfs::openat2(&self.fd, rel.as_str(), flags, Mode::empty(), resolve) {
                        Ok(fd) => return regular(fd, || self.path.join(&rel)),
                        // Not supported (old kernel, seccomp): the portable way from now on.
                        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                            NO_OPENAT2.store(true, Ordering::Relaxed)
                        }
                        Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => {
                            return Err(symlink_error(&self.path.join(&rel)))
                        }
                        Err(e) => return Err(path_error(self.path.join(&rel), e.into())),
                    }
                }
            }
            self.sub(fan)?.open_read(name)
        }

        /// What `lstat` says about `name` (a link is described, not followed).
        pub fn stat(&self, name: &str) -> io::Result<FileInfo> {
            Ok(info(&rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?))
        }

        /// Removes the file `name` (a link is removed itself, its target untouched).
        pub fn remove(&self, name: &str) -> io::Result<()> {
            Ok(rfs::unlinkat(&self.fd, name, AtFlags::empty())?)
        }

        /// Creates a new file `name` (mode 0600) for writing; fails if anything exists under that name.
        pub fn create_new(&self, name: &str) -> io::Result<File> {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            Ok(File::from(rfs::openat(&self.fd, name, flags, Mode::RUSR | Mode::WUSR)?))
        }

        /// Renames `from` to `to`, both in this directory (replacing `to`, a link itself if it is one).
        pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            Ok(rfs::renameat(&self.fd, from, &self.fd, to)?)
        }

        /// Flushes the directory's entries to stable storage.
        pub fn sync(&self) -> io::Result<()> {
            Ok(rfs::fsync(&self.fd)?)
        }

        /// Opens (with `create`, creating with mode 0600) the lock file `name` read-write: never through a link,
        /// only a regular file owned by this user; a looser mode is tightened to 0600.
        pub fn open_lock(&self, name: &str, create: bool) -> io::Result<File> {
            let path = self.path.join(name);
            let mut flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            if create {
                flags |= OFlags::CREATE;
            }
            let fd = rfs::openat(&self.fd, name, flags, Mode::RUSR | Mode::WUSR)
                .map_err(|e| explain(e, || rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok(), &path))?;
            let st = rfs::fstat(&fd)?;
            if !info(&st).is_file {
                return Err(io::Error::other(format!("`{}` is not a regular file", path.display())));
            }
            if owner(&st) != me() {
                return Err(not_ours(&path, owner(&st), me()));
            }
            #[allow(clippy::unnecessary_cast)]
            if st.st_mode as u32 & 0o077 != 0 {
                rfs::fchmod(&fd, Mode::RUSR | Mode::WUSR)?;
            }
            Ok(File::from(fd))
        }
    }

    /// `fd` with its `fstat`, if it is a regular file; `path` names it in the error otherwise (made only then).
    fn regular<P: AsRef<Path>>(fd: OwnedFd, path: impl FnOnce() -> P) -> io::Result<(File, FileInfo)> {
        let i = info(&rfs::fstat(&fd)?);
        if !i.is_file {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not a regular file", path().as_ref().display()),
            ));
        }
        Ok((File::from(fd), i))
    }

    /// Opens a file by path for reading: the last component must not be a link, a FIFO does not block, and only
    /// a regular file is accepted.
    pub(crate) fn open_read_path(path: &Path) -> io::Result<(File, FileInfo)> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rfs::open(path, flags, Mode::empty()).map_err(|e| explain(e, || rfs::lstat(path).ok(), path))?;
        regular(fd, || path)
    }

    /// Turns the error of an `O_NOFOLLOW` open into one that says "symbolic link" when that is why it failed.
    fn explain(e: rustix::io::Errno, lstat: impl FnOnce() -> Option<rfs::Stat>, path: &Path) -> io::Error {
        match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::MLINK => match lstat() {
                Some(st) if info(&st).is_symlink => symlink_error(path),
                _ => io::Error::other(format!("`{}`: {}", path.display(), io::Error::from(e))),
            },
            e => path_error(path.to_path_buf(), e.into()),
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! The portable fallback: paths under the directory's path, each checked with `symlink_metadata` first.
    use super::{symlink_error, FileInfo};
    use std::fs::{self, File};
    use std::io;
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub(crate) struct Dir {
        path: PathBuf,
    }

    fn info(m: &fs::Metadata) -> FileInfo {
        FileInfo {
            len: m.len(),
            allocated: None,
            is_file: m.is_file(),
            is_dir: m.is_dir(),
            is_symlink: m.file_type().is_symlink(),
            modified: m.modified().ok(),
            id: (0, 0),
        }
    }

    pub(crate) fn mode_of(_path: &Path) -> io::Result<u32> {
        Ok(0o700)
    }

    fn no_link(path: &Path) -> io::Result<fs::Metadata> {
        let m = fs::symlink_metadata(path)?;
        if m.file_type().is_symlink() {
            return Err(symlink_error(path));
        }
        Ok(m)
    }

    impl Dir {
        pub fn open(path: &Path) -> io::Result<Dir> {
            if !no_link(path)?.is_dir() {
                return Err(io::Error::other(format!("`{}` is not a directory", path.display())));
            }
            Ok(Dir {
                path: path.to_path_buf(),
            })
        }
        pub fn open_root(path: &Path) -> io::Result<Dir> {
            if !fs::metadata(path)?.is_dir() {
                return Err(io::Error::other(format!("`{}` is not a directory", path.display())));
            }
            Ok(Dir {
                path: path.to_path_buf(),
            })
        }
        pub fn path(&self) -> &Path {
            &self.path
        }
        pub fn id(&self) -> Option<(u64, u64)> {
            None
        }
        pub fn sub(&self, name: &str) -> io::Result<Dir> {
            Dir::open(&self.path.join(name))
        }
        pub fn sub_or_create(&self, name: &str) -> io::Result<Dir> {
            match self.sub(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match fs::create_dir(self.path.join(name)) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                        _ => {}
                    }
                    self.sub(name)
                }
                other => other,
            }
        }
        pub fn list(&self) -> io::Result<Vec<std::ffi::OsString>> {
            fs::read_dir(&self.path)?.map(|e| e.map(|e| e.file_name())).collect()
        }
        pub fn open_read(&self, name: &str) -> io::Result<(File, FileInfo)> {
            open_read_path(&self.path.join(name))
        }
        pub fn open_read_in(&self, fan: &str, name: &str) -> io::Result<(File, FileInfo)> {
            self.sub(fan)?.open_read(name)
        }
        pub fn stat(&self, name: &str) -> io::Result<FileInfo> {
            Ok(info(&fs::symlink_metadata(self.path.join(name))?))
        }
        pub fn remove(&self, name: &str) -> io::Result<()> {
            fs::remove_file(self.path.join(name))
        }
        pub fn create_new(&self, name: &str) -> io::Result<File> {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.path.join(name))
        }
        pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            fs::rename(self.path.join(from), self.path.join(to))
        }
        pub fn sync(&self) -> io::Result<()> {
            Ok(())
        }
        pub fn open_lock(&self, name: &str, create: bool) -> io::Result<File> {
            let path = self.path.join(name);
            match no_link(&path) {
                Ok(m) if !m.is_file() => {
                    return Err(io::Error::other(format!("`{}` is not a regular file", path.display())))
                }
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(path)
        }
    }

    pub(crate) fn open_read_path(path: &Path) -> io::Result<(File, FileInfo)> {
        let m = no_link(path)?;
        if !m.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not a regular file", path.display()),
            ));
        }
        let file = File::open(path)?;
        let i = info(&file.metadata()?);
        if !i.is_file {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok((file, i))
    }
}

pub(crate) use imp::{mode_of, open_read_path, Dir};

/// Why a directory is unsafe to keep a cache in, if it is: writable by group or others without the sticky bit.
pub(crate) fn insecure_dir(path: &Path) -> Option<String> {
    let mode = mode_of(path).ok()?;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        Some(format!(
            "bucket directory `{}` is writable by {} (mode {:04o}) without the sticky bit: another local user could \
             plant links or files in it or replace its directories; make it private with `chmod 700 {}`",
            path.display(),
            match mode & 0o022 {
                0o020 => "its group",
                0o002 => "every user",
                _ => "its group and every user",
            },
            mode,
            path.display()
        ))
    } else {
        None
    }
}

/// Whether a file of `len` bytes, of which `allocated` are on disk, is mostly holes: a sparse file under an
/// entry's name would make a reader produce gigabytes of zeros from a few kilobytes on disk. Files under
/// [`SPARSE_MIN_LEN`] are never judged (file systems round allocations, and compress small files).
pub(crate) fn looks_sparse(info: &FileInfo) -> bool {
    info.len >= SPARSE_MIN_LEN && info.allocated.is_some_and(|a| a < info.len / SPARSE_RATIO)
}

/// Files at least this long are checked for holes.
pub(crate) const SPARSE_MIN_LEN: u64 = 16 * 1024 * 1024;
/// A file with less than 1/`SPARSE_RATIO` of its length on disk is judged sparse.
pub(crate) const SPARSE_RATIO: u64 = 16;
