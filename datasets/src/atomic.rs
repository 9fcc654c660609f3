//! Atomic output: a file is written under a temporary name beside its target
//! (`.<name>.tmp-<pid>-<n>`) and renamed over the target only once complete.
//!
//! A rename within one directory is atomic on POSIX file systems, so the final path either does
//! not exist or holds a complete file. A failed or dropped writer removes its temporary file; a
//! killed process may leave one behind (it never has the target's name).
//!
//! This is the one atomic-write helper of the project: the HDF5 writer, the XDMF sidecars, the
//! PNG plots and the training run's JSON/CSV files all go through it (checkpoints are directories,
//! staged as `.step-N.tmp/` and renamed the same way).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DatasetError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A target path and the temporary file that stands in for it until [`commit`](Self::commit).
#[derive(Debug)]
pub struct AtomicTarget {
    target: PathBuf,
    temp: PathBuf,
    force: bool,
    committed: bool,
}

impl AtomicTarget {
    /// Reserves a temporary name beside `target`; refuses an existing target unless `force`.
    ///
    /// # Errors
    /// [`DatasetError::Invalid`] for a path without a file name or in a missing directory;
    /// [`DatasetError::Exists`] for an existing target without `force`.
    pub fn new(target: &Path, force: bool) -> Result<Self> {
        Self::with_suffix(target, force, "")
    }

    /// As [`AtomicTarget::new`], with a temporary name ending in `suffix` (e.g. `.png`, for
    /// encoders that pick the format from the extension).
    ///
    /// # Errors
    /// As [`AtomicTarget::new`].
    pub fn with_suffix(target: &Path, force: bool, suffix: &str) -> Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| DatasetError::invalid(target, "output path has no file name"))?
            .to_string_lossy()
            .into_owned();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(DatasetError::invalid(&dir, "the output directory does not exist"));
        }
        check_overwrite(target, force)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.tmp-{}-{n}{suffix}", std::process::id()));
        Ok(Self { target: target.to_path_buf(), temp, force, committed: false })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary path to write to.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Renames the temporary file to the target (checking again that the target may be
    /// replaced).
    ///
    /// # Errors
    /// [`DatasetError::Exists`] if the target appeared meanwhile without `force`; the rename's
    /// I/O error.
    pub fn commit(mut self) -> Result<()> {
        check_overwrite(&self.target, self.force)?;
        std::fs::rename(&self.temp, &self.target).map_err(|e| DatasetError::io(&self.target, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicTarget {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the temporary file may never have been created.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// An existing target is refused without `force`; with it, only a regular file may be replaced
/// (never a directory, symlink, device, FIFO or socket, which a rename would replace silently).
fn check_overwrite(target: &Path, force: bool) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(target) else { return Ok(()) };
    if !force {
        return Err(DatasetError::Exists { path: target.to_path_buf() });
    }
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else {
            "not a regular file (a device, FIFO or socket)"
        };
        return Err(DatasetError::invalid(target, format!("is {what}; --force replaces regular files only")));
    }
    Ok(())
}

/// Writes `bytes` to `target` atomically (flushed to disk before the rename).
///
/// # Errors
/// As [`AtomicTarget::new`]; I/O errors naming the temporary file.
pub fn write_atomic(target: &Path, bytes: &[u8], force: bool) -> Result<()> {
    use std::io::Write;
    let t = AtomicTarget::new(target, force)?;
    let mut file = std::fs::File::create(t.temp()).map_err(|e| DatasetError::io(t.temp(), e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| DatasetError::io(t.temp(), e))?;
    drop(file);
    t.commit()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn force_replaces_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file.h5");
        std::fs::write(&file, b"old").unwrap();
        write_atomic(&file, b"new", true).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        let sub = dir.path().join("sub.h5");
        std::fs::create_dir(&sub).unwrap();
        let link = dir.path().join("link.h5");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for (target, what) in [(&sub, "a directory"), (&link, "a symbolic link")] {
            let err = write_atomic(target, b"x", true).unwrap_err().to_string();
            assert!(err.contains(what) && err.contains("regular files only"), "{err}");
        }
        assert!(sub.is_dir() && std::fs::read(&link).unwrap() == b"new", "nothing was replaced");
        let err = write_atomic(Path::new("/dev/null"), b"x", true).unwrap_err().to_string();
        assert!(err.contains("device"), "{err}");
        assert!(write_atomic(&file, b"x", false).unwrap_err().to_string().contains("exists"));
    }

    #[test]
    fn temp_is_hidden_beside_target_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5");
        let t = AtomicTarget::new(&target, false).unwrap();
        assert_eq!(t.temp().parent(), Some(dir.path()));
        let name = t.temp().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".out.h5.tmp-"), "{name}");
        std::fs::write(t.temp(), b"partial").unwrap();
        let temp = t.temp().to_path_buf();
        drop(t);
        assert!(!temp.exists() && !target.exists());
    }

    #[test]
    fn existing_target_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.xdmf");
        std::fs::write(&target, b"old").unwrap();
        let err = write_atomic(&target, b"new", false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        write_atomic(&target, b"new", true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = AtomicTarget::new(&dir.path().join("nope/out.h5"), false).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
