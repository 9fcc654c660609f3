//! Errors of the `fieldflow-datasets` crate: one enum whose messages name the file and the dataset
//! or attribute at fault, so the CLI can show them to a user unchanged.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Everything that can go wrong reading, writing or importing a dataset file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file that was asked for.
        path: PathBuf,
    },
    /// The file exists but is not an HDF5 file.
    #[error("{}: not an HDF5 file", path.display())]
    NotHdf5 {
        /// The file at fault.
        path: PathBuf,
    },
    /// The file is a MATLAB file in a version that is not HDF5 (v5, v7).
    #[error("{}: MATLAB .mat file older than v7.3 (not HDF5); re-save it in MATLAB with `save(..., '-v7.3')`", path.display())]
    MatlabNotHdf5 {
        /// The file at fault.
        path: PathBuf,
    },
    /// The output file exists and overwriting was not asked for.
    #[error("{}: file already exists; use --force to overwrite it", path.display())]
    Exists {
        /// The output file.
        path: PathBuf,
    },
    /// An operating-system I/O error (creating, renaming or removing a file).
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The HDF5 library reported an error on an object of the file.
    #[error("{}: {object}: {cause}", path.display())]
    Hdf5 {
        /// The file at fault.
        path: PathBuf,
        /// The dataset, group or attribute being accessed (`/` for the file itself).
        object: String,
        /// The HDF5 error (in the message, so not a `source`: printed once).
        cause: hdf5::Error,
    },
    /// A dataset the layout requires is missing.
    #[error("{}: dataset {dataset} is missing", path.display())]
    MissingDataset {
        /// The file at fault.
        path: PathBuf,
        /// The missing dataset, e.g. `/fields`.
        dataset: String,
    },
    /// An attribute the layout requires is missing.
    #[error("{}: attribute {attribute} is missing", path.display())]
    MissingAttribute {
        /// The file at fault.
        path: PathBuf,
        /// The missing attribute, e.g. `/fieldflow_format`.
        attribute: String,
    },
    /// An attribute exists but its value or type is unusable.
    #[error("{}: attribute {attribute}: {reason}", path.display())]
    BadAttribute {
        /// The file at fault.
        path: PathBuf,
        /// The attribute at fault.
        attribute: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file's `fieldflow_format` is not one this version reads.
    #[error("{}: attribute /fieldflow_format = {found}: this fieldflow reads format version {supported}", path.display())]
    FormatVersion {
        /// The file at fault.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The version this crate reads and writes.
        supported: u32,
    },
    /// A dataset or array has the wrong shape.
    #[error("{}: dataset {dataset} has shape {}, expected {expected}", path.display(), ShapeDisplay(found))]
    Shape {
        /// The file at fault.
        path: PathBuf,
        /// The dataset (or input array, e.g. `/fields (input batch)`) at fault.
        dataset: String,
        /// A description of the expected shape, e.g. `(N, 2, 64, 64)`.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A dataset has a datatype the layout does not allow.
    #[error("{}: dataset {dataset} has type {found}, expected {expected}", path.display())]
    Dtype {
        /// The file at fault.
        path: PathBuf,
        /// The dataset at fault.
        dataset: String,
        /// The type found.
        found: String,
        /// The type expected.
        expected: String,
    },
    /// Data to be written (or read) holds NaN or infinite values, or overflows the file's type.
    #[error("{}: dataset {dataset}: {what} in sample {sample}", path.display())]
    NonFinite {
        /// The file at fault.
        path: PathBuf,
        /// The dataset being written.
        dataset: String,
        /// The sample index (in the file) of the first bad value.
        sample: usize,
        /// What was found, e.g. `NaN`, `infinite value`, `value 1e300 overflows float32`.
        what: String,
    },
    /// A sample range lies outside the dataset.
    #[error("{}: dataset {dataset}: samples {start}..{end} out of range (the dataset holds {len})", path.display())]
    Range {
        /// The file at fault.
        path: PathBuf,
        /// The dataset being read.
        dataset: String,
        /// First sample asked for.
        start: usize,
        /// One past the last sample asked for.
        end: usize,
        /// Number of samples in the dataset.
        len: usize,
    },
    /// The file's datasets do not match any format this crate can read.
    #[error("{}: unrecognised layout (datasets: {}); expected a fieldflow file, PDEBench 2D Darcy / incompressible NS / compressible CFD, or an FNO .mat v7.3 file", path.display(), datasets.join(", "))]
    UnknownFormat {
        /// The file at fault.
        path: PathBuf,
        /// The root-level datasets found.
        datasets: Vec<String>,
    },
    /// Metadata, options or arguments are inconsistent (e.g. channel names vs. array shapes).
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Formats a shape as `(a, b, c)`.
pub(crate) struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

impl DatasetError {
    /// Wraps an HDF5 error with the file and object it concerns.
    pub(crate) fn hdf5(path: &Path, object: impl Into<String>, source: hdf5::Error) -> Self {
        Self::Hdf5 { path: path.to_path_buf(), object: object.into(), cause: source }
    }

    /// Wraps an I/O error with the file it concerns.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), cause: source }
    }

    /// An [`Invalid`](Self::Invalid) error.
    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), reason: reason.into() }
    }

    /// A [`Shape`](Self::Shape) error.
    pub(crate) fn shape(path: &Path, dataset: impl Into<String>, expected: impl Into<String>, found: &[usize]) -> Self {
        Self::Shape {
            path: path.to_path_buf(),
            dataset: dataset.into(),
            expected: expected.into(),
            found: found.to_vec(),
        }
    }

    /// The file this error concerns.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::NotFound { path }
            | Self::NotHdf5 { path }
            | Self::MatlabNotHdf5 { path }
            | Self::Exists { path }
            | Self::Io { path, .. }
            | Self::Hdf5 { path, .. }
            | Self::MissingDataset { path, .. }
            | Self::MissingAttribute { path, .. }
            | Self::BadAttribute { path, .. }
            | Self::FormatVersion { path, .. }
            | Self::Shape { path, .. }
            | Self::Dtype { path, .. }
            | Self::NonFinite { path, .. }
            | Self::Range { path, .. }
            | Self::UnknownFormat { path, .. }
            | Self::Invalid { path, .. } => path,
        }
    }

    /// Whether the error is the user's input at fault (a bad file, argument or option) rather than
    /// a failure of the machine (I/O, HDF5 library): the CLI maps the former to exit code 2.
    #[must_use]
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Io { .. } | Self::Hdf5 { .. })
    }
}
