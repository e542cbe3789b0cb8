//! Writing an image file so that a crash or a full disk never leaves a damaged image under the
//! final name: write `NAME.tmp` (mode 0600: images hold process memory), `fsync` it, rename it
//! over `NAME`, `fsync` the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a durable write step failed.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// The temporary file could not be created.
    #[error("cannot create {}: {source}; check that the directory exists and is writable", path.display())]
    CreateTmp {
        /// The temporary file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The data could not be flushed to disk.
    #[error("cannot flush {} to disk: {source}; check free space", path.display())]
    SyncFile {
        /// The temporary file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The temporary file could not be renamed to the final name.
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The directory could not be flushed (the rename may not survive a crash).
    #[error("cannot flush directory {} to disk: {source}", path.display())]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The temporary name an image is written under before [`commit`]: `NAME.tmp`.
pub fn tmp_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Creates `NAME.tmp` for writing with mode 0600, replacing a stale one left by a crash.
pub fn create_tmp(final_path: &Path) -> Result<(File, PathBuf), DurableError> {
    let path = tmp_path(final_path);
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
    };
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A stale temporary: remove it rather than reuse it, so its mode cannot leak.
            fs::remove_file(&path).and_then(|()| open())
        }
        other => other,
    };
    match file {
        Ok(file) => Ok((file, path)),
        Err(source) => Err(DurableError::CreateTmp { path, source }),
    }
}

/// Makes `file` (written at `tmp`) durable and puts it in place as `final_path`.
pub fn commit(file: File, tmp: &Path, final_path: &Path) -> Result<(), DurableError> {
    file.sync_all().map_err(|source| DurableError::SyncFile {
        path: tmp.to_owned(),
        source,
    })?;
    drop(file);
    fs::rename(tmp, final_path).map_err(|source| DurableError::Rename {
        from: tmp.to_owned(),
        to: final_path.to_owned(),
        source,
    })?;
    let dir = match final_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| DurableError::SyncDir {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tmp_then_commit_leaves_a_0600_file_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.crac");
        // A stale temporary from an earlier crash, readable by everyone.
        fs::write(tmp_path(&target), b"stale").unwrap();
        fs::set_permissions(tmp_path(&target), fs::Permissions::from_mode(0o644)).unwrap();
        let (mut f, tmp) = create_tmp(&target).unwrap();
        f.write_all(b"image").unwrap();
        commit(f, &tmp, &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"image");
        assert!(!tmp.exists());
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_directory_is_a_create_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_tmp(&dir.path().join("no/such/a.crac")).unwrap_err();
        assert!(matches!(err, DurableError::CreateTmp { .. }), "{err}");
    }
}
