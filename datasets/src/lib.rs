//! # fieldflow-datasets
//!
//! HDF5 data for fieldflow: the native layout (version 1), a streaming [`FieldWriter`] with
//! atomic output and normalisation statistics, a validating [`FieldReader`], XDMF sidecars for
//! ParaView, and readers/importers for PDEBench and FNO `.mat` (v7.3) files.
//!
//! ## The native layout (version 1)
//!
//! ```text
//! /fields        (N, C, ny, nx)     float32 | float64   the samples
//! /coefficients  (N, Ca, ny, nx)    optional            inputs, e.g. Darcy permeability a
//! /trajectories  (N, T, C, ny, nx)  optional            time series, with /time (T,)
//! /grid/x (nx,), /grid/y (ny,)                          float64 coordinates
//! /stats/{fields,coefficients,trajectories}_{mean,std,min,max} (C,) per-channel statistics
//! /checks/<name>/per_sample (N,)                        residual reports of `fieldflow check --write`
//! attributes on /: fieldflow_format = 1, pde, channels, coefficient_channels, lx, ly, boundary,
//!                  seed, created_by, config (see [`Metadata`])
//! ```
//!
//! Arrays are `[batch, channel, y, x]`, row-major, x fastest. Every finished file gets a
//! `<name>.xdmf` sidecar. Readers return `f64` whatever the precision on disk.
//!
//! ```
//! # fn main() -> Result<(), fieldflow_datasets::DatasetError> {
//! use fieldflow_datasets::{Dtype, FieldReader, FieldWriter, FileSpec, Grid, Metadata, WriterOptions};
//! use ndarray::Array4;
//!
//! let dir = tempfile::tempdir().map_err(|e| fieldflow_datasets::DatasetError::Io { path: ".".into(), cause: e })?;
//! let path = dir.path().join("vel.h5");
//! let spec = FileSpec::new(Metadata::new("navier_stokes", &["u", "v"]), Grid::periodic(8, 4, 1.0, 0.5), Dtype::F32);
//! let mut writer = FieldWriter::create(&path, spec, &WriterOptions::default())?;
//! let batch = Array4::from_shape_fn((3, 2, 4, 8), |(n, c, y, x)| (n + c + y + x) as f64);
//! writer.append(batch.view(), None)?;
//! writer.finish()?;
//!
//! let reader = FieldReader::open(&path)?;
//! assert_eq!(reader.len(), 3);
//! assert_eq!(reader.read_range(1..3)?, batch.slice(ndarray::s![1..3, .., .., ..]));
//! # Ok(())
//! # }
//! ```

/// The accessors of [`FieldSource`] for an upstream reader struct with the fields `path`,
/// `metadata`, `grid` and `len`: every such reader stores what it reports.
macro_rules! source_accessors {
    ($format:expr) => {
        fn path(&self) -> &std::path::Path {
            &self.path
        }
        fn format(&self) -> crate::source::SourceFormat {
            $format
        }
        fn metadata(&self) -> &crate::metadata::Metadata {
            &self.metadata
        }
        fn grid(&self) -> &crate::metadata::Grid {
            &self.grid
        }
        fn len(&self) -> usize {
            self.len
        }
        fn sample_shape(&self) -> [usize; 3] {
            [self.metadata.channels.len(), self.grid.ny(), self.grid.nx()]
        }
    };
}

mod atomic;
pub mod checks;
mod error;
pub mod fno_mat;
pub mod generate;
mod h5;
mod import;
mod info;
mod metadata;
pub mod pdebench;
mod physics;
mod reader;
mod source;
mod stats;
mod writer;
mod xdmf;

pub use atomic::{AtomicTarget, write_atomic};
pub use checks::{CheckRecord, read_checks, write_check};
pub use error::{DatasetError, Result};
pub use import::{ImportOptions, import};
pub use info::{AttributeInfo, ChannelStats, DatasetInfo, Info, info};
pub use metadata::{Boundary, Dtype, FORMAT_VERSION, Grid, Metadata, created_by};
pub use physics::{ChannelRoles, PdeKind, Physics};
pub use reader::{Batch, Batches, FieldReader};
pub use source::{FieldSource, SourceFormat, open_source, open_source_as};
pub use stats::{RunningStats, Stats};
pub use writer::{FieldWriter, FileSpec, WriterOptions, Written};
pub use xdmf::{MAX_TRAJECTORIES, sidecar_path, write_xdmf};
