//! Atomic output: a file is written under a temporary name beside its target
//! (`.<name>.tmp-<pid>-<n>`) and renamed over the target only once complete.
//!
//! A rename within one directory is atomic on POSIX file systems, so the final path either does
//! not exist or holds a complete file. A failed or dropped writer removes its temporary file; a
//! killed process may leave one behind (it never has the target's name).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DatasetError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A target path and the temporary file that stands in for it until [`commit`](Self::commit).
#[derive(Debug)]
pub(crate) struct AtomicTarget {
    target: PathBuf,
    temp: PathBuf,
    force: bool,
    committed: bool,
}

impl AtomicTarget {
    /// Reserves a temporary name beside `target`; refuses an existing target unless `force`.
    pub(crate) fn new(target: &Path, force: bool) -> Result<Self> {
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
        let temp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        Ok(Self { target: target.to_path_buf(), temp, force, committed: false })
    }

    /// The final path.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary path to write to.
    pub(crate) fn temp(&self) -> &Path {
        &self.temp
    }

    /// Renames the temporary file to the target (checking again that the target may be
    /// replaced).
    pub(crate) fn commit(mut self) -> Result<()> {
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

fn check_overwrite(target: &Path, force: bool) -> Result<()> {
    if !force && std::fs::symlink_metadata(target).is_ok() {
        return Err(DatasetError::Exists { path: target.to_path_buf() });
    }
    Ok(())
}

/// Writes `bytes` to `target` atomically.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let t = AtomicTarget::new(target, force)?;
    std::fs::write(t.temp(), bytes).map_err(|e| DatasetError::io(t.temp(), e))?;
    t.commit()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
