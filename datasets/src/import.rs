//! Importing any supported file into the native layout: the source is read in batches through
//! [`FieldSource`] and streamed into a [`FieldWriter`], so files larger than memory import fine.

use std::path::Path;

use crate::error::{DatasetError, Result};
use crate::metadata::Dtype;
use crate::source::{SourceFormat, open_source_as};
use crate::writer::{FieldWriter, FileSpec, WriterOptions, Written};

/// Bytes of `f64` data per import batch when [`ImportOptions::batch_size`] is not set.
const BATCH_BYTES: usize = 64 << 20;

/// How [`import`] converts a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportOptions {
    /// The source format; `None` detects it.
    pub format: Option<SourceFormat>,
    /// Precision of the output (PDEBench data is float32 already).
    pub dtype: Dtype,
    /// Output options (chunking, compression, `force`).
    pub writer: WriterOptions,
    /// Samples per batch; `None` picks about 64 MiB of `f64` data per batch.
    pub batch_size: Option<usize>,
    /// Import only the first `limit` samples.
    pub limit: Option<usize>,
}

/// Converts `src` (any [`SourceFormat`]) into a native file at `dst`, with its XDMF sidecar.
///
/// # Errors
///
/// The errors of detecting and opening the source ([`DatasetError::UnknownFormat`],
/// [`DatasetError::MissingDataset`], [`DatasetError::Shape`], ...), of
/// [`FieldWriter::create`] (e.g. [`DatasetError::Exists`] without `force`), and
/// [`DatasetError::NonFinite`] if the source holds NaN or infinite values (naming the output
/// dataset and sample). No file is left at `dst` on error.
pub fn import(src: impl AsRef<Path>, dst: impl AsRef<Path>, options: &ImportOptions) -> Result<Written> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    if options.batch_size == Some(0) {
        return Err(DatasetError::invalid(src, "import batch size must be at least 1"));
    }
    let format = match options.format {
        Some(f) => f,
        None => SourceFormat::detect(src)?,
    };
    let source = open_source_as(src, format)?;
    let mut metadata = source.metadata().clone();
    if format != SourceFormat::Native {
        metadata.created_by = crate::metadata::created_by();
    }
    let spec = FileSpec {
        metadata,
        grid: source.grid().clone(),
        dtype: options.dtype,
        time: source.time().map(<[f64]>::to_vec),
    };
    let [c, ny, nx] = source.sample_shape();
    let per_sample =
        (c + spec.metadata.coefficient_channels.len() + spec.time.as_ref().map_or(0, Vec::len) * c) * ny * nx * 8;
    let batch = options.batch_size.unwrap_or(BATCH_BYTES / per_sample.max(1)).max(1);
    let n = options.limit.map_or(source.len(), |l| l.min(source.len()));

    let mut writer = FieldWriter::create(dst, spec, &options.writer)?;
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let fields = source.read_fields(start..end)?;
        let coefficients = source.read_coefficients(start..end)?;
        writer.append(fields.view(), coefficients.as_ref().map(|a| a.view()))?;
        if let Some(traj) = source.read_trajectories(start..end)? {
            writer.append_trajectories(traj.view())?;
        }
        start = end;
    }
    writer.finish()
}
