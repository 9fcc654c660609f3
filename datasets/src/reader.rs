//! Reader of native files: validates the layout on open, then reads sample ranges through HDF5
//! hyperslab selections, so only the requested samples are read. Values come back as `f64`
//! whatever the precision on disk.

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::{Dataset, File, Hyperslab, Selection, SliceOrIndex};
use ndarray::{Array, Array4, Array5, Dimension};

use crate::error::{DatasetError, Result, ShapeDisplay};
use crate::h5;
use crate::metadata::{Dtype, Grid, Metadata};
use crate::stats::Stats;

/// An open native file (layout version 1), validated on open; sample ranges are read through
/// HDF5 hyperslab selections and returned as `f64` whatever the precision on disk.
#[derive(Debug)]
pub struct FieldReader {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    fields: Dataset,
    coefficients: Option<Dataset>,
    trajectories: Option<Dataset>,
    time: Option<Vec<f64>>,
    len: usize,
    shape: [usize; 3],
    dtype: Dtype,
    coefficients_dtype: Option<Dtype>,
    trajectories_dtype: Option<Dtype>,
    fields_stats: Option<Stats>,
    coefficients_stats: Option<Stats>,
    trajectories_stats: Option<Stats>,
    _file: File,
}

/// A batch of consecutive samples from [`FieldReader::batches`].
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Index of the first sample of the batch.
    pub start: usize,
    /// `(B, C, ny, nx)`.
    pub fields: Array4<f64>,
    /// `(B, Ca, ny, nx)` when the file has coefficients.
    pub coefficients: Option<Array4<f64>>,
}

impl FieldReader {
    /// Opens and validates a native file.
    ///
    /// # Errors
    ///
    /// [`DatasetError::NotFound`], [`DatasetError::NotHdf5`]; [`DatasetError::MissingAttribute`]
    /// / [`DatasetError::FormatVersion`] / [`DatasetError::BadAttribute`] for the root
    /// attributes; [`DatasetError::MissingDataset`], [`DatasetError::Shape`] or
    /// [`DatasetError::Dtype`] when a dataset is absent or inconsistent with the others; an
    /// [`DatasetError::Invalid`] hint when the file is a PDEBench or FNO file (to be imported).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        if !h5::has_attr(&file, "fieldflow_format") {
            let detected = crate::source::detect_open(&file, path).ok();
            if let Some(format) = detected.filter(|&f| f != crate::source::SourceFormat::Native) {
                return Err(DatasetError::invalid(
                    path,
                    format!(
                        "not a fieldflow file (attribute /fieldflow_format is missing); it looks like {}: import it with `fieldflow import` or read it through `open_source`",
                        format.description()
                    ),
                ));
            }
            return Err(DatasetError::MissingAttribute {
                path: path.to_path_buf(),
                attribute: "/fieldflow_format".into(),
            });
        }
        let metadata = Metadata::read(&file, path)?;
        let c = metadata.channels.len();

        let fields = h5::dataset(&file, path, "fields")?;
        let dtype = h5::float_dtype(&fields, path, "fields")?;
        let fshape = h5::shape(&fields, path, "fields")?;
        let &[len, fc, ny, nx] = fshape.as_slice() else {
            return Err(DatasetError::shape(path, "/fields", format!("(N, {c}, ny, nx)"), &fshape));
        };
        if fc != c {
            return Err(DatasetError::shape(
                path,
                "/fields",
                format!("(N, {c}, ny, nx) for {c} channel(s) {:?} (attribute /channels)", metadata.channels),
                &fshape,
            ));
        }
        let grid = Grid { x: h5::read_f64_flat(&file, path, "grid/x")?, y: h5::read_f64_flat(&file, path, "grid/y")? };
        for (name, n, want) in [("/grid/x", grid.nx(), nx), ("/grid/y", grid.ny(), ny)] {
            if n != want {
                return Err(DatasetError::shape(
                    path,
                    name,
                    format!("({want},) to match /fields {}", ShapeDisplay(&fshape)),
                    &[n],
                ));
            }
        }

        let ca = metadata.coefficient_channels.len();
        let (coefficients, coefficients_dtype) = if h5::exists(&file, "coefficients") {
            if ca == 0 {
                return Err(DatasetError::MissingAttribute {
                    path: path.to_path_buf(),
                    attribute: "/coefficient_channels".into(),
                });
            }
            let ds = h5::dataset(&file, path, "coefficients")?;
            let dt = h5::float_dtype(&ds, path, "coefficients")?;
            let s = h5::shape(&ds, path, "coefficients")?;
            if s != [len, ca, ny, nx] {
                let expected = ShapeDisplay(&[len, ca, ny, nx]).to_string();
                return Err(DatasetError::shape(path, "/coefficients", format!("{expected} (N, Ca, ny, nx)"), &s));
            }
            (Some(ds), Some(dt))
        } else if ca > 0 {
            return Err(DatasetError::MissingDataset { path: path.to_path_buf(), dataset: "/coefficients".into() });
        } else {
            (None, None)
        };

        let (trajectories, trajectories_dtype, time) = if h5::exists(&file, "trajectories") {
            let time = h5::read_f64_flat(&file, path, "time")?;
            let ds = h5::dataset(&file, path, "trajectories")?;
            let dt = h5::float_dtype(&ds, path, "trajectories")?;
            let s = h5::shape(&ds, path, "trajectories")?;
            let expected = [len, time.len(), c, ny, nx];
            if s != expected {
                return Err(DatasetError::shape(
                    path,
                    "/trajectories",
                    format!("{} (N, T, C, ny, nx) with T from /time", ShapeDisplay(&expected)),
                    &s,
                ));
            }
            (Some(ds), Some(dt), Some(time))
        } else {
            (None, None, None)
        };

        let fields_stats = Stats::read(&file, path, "fields", c)?;
        let coefficients_stats = if ca > 0 { Stats::read(&file, path, "coefficients", ca)? } else { None };
        let trajectories_stats = if time.is_some() { Stats::read(&file, path, "trajectories", c)? } else { None };
        Ok(Self {
            path: path.to_path_buf(),
            metadata,
            grid,
            fields,
            coefficients,
            trajectories,
            time,
            len,
            shape: [c, ny, nx],
            dtype,
            coefficients_dtype,
            trajectories_dtype,
            fields_stats,
            coefficients_stats,
            trajectories_stats,
            _file: file,
        })
    }

    /// The file path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root attributes.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The grid coordinates.
    #[must_use]
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Number of samples N.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file holds no sample.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The per-sample shape `[C, ny, nx]`.
    #[must_use]
    pub fn sample_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Precision of `/fields` on disk.
    #[must_use]
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Precision of `/coefficients` on disk, if present.
    #[must_use]
    pub fn coefficients_dtype(&self) -> Option<Dtype> {
        self.coefficients_dtype
    }

    /// Precision of `/trajectories` on disk, if present.
    #[must_use]
    pub fn trajectories_dtype(&self) -> Option<Dtype> {
        self.trajectories_dtype
    }

    /// Whether the file has `/coefficients`.
    #[must_use]
    pub fn has_coefficients(&self) -> bool {
        self.coefficients.is_some()
    }

    /// The trajectory frame times (`/time`), if the file has trajectories.
    #[must_use]
    pub fn time(&self) -> Option<&[f64]> {
        self.time.as_deref()
    }

    /// Stored statistics of `/fields` (`None` for files written by other programs).
    #[must_use]
    pub fn fields_stats(&self) -> Option<&Stats> {
        self.fields_stats.as_ref()
    }

    /// Stored statistics of `/coefficients`.
    #[must_use]
    pub fn coefficients_stats(&self) -> Option<&Stats> {
        self.coefficients_stats.as_ref()
    }

    /// Stored statistics of `/trajectories`.
    #[must_use]
    pub fn trajectories_stats(&self) -> Option<&Stats> {
        self.trajectories_stats.as_ref()
    }

    /// Reads samples `range` of `/fields`.
    ///
    /// # Shapes
    ///
    /// Returns `(end - start, C, ny, nx)`.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Range`] if the range exceeds the file, [`DatasetError::Hdf5`] on read
    /// failures.
    pub fn read_range(&self, range: Range<usize>) -> Result<Array4<f64>> {
        read_rows(&self.fields, &self.path, "/fields", range, self.len)
    }

    /// Reads samples `range` of `/coefficients`.
    ///
    /// # Shapes
    ///
    /// Returns `(end - start, Ca, ny, nx)`.
    ///
    /// # Errors
    ///
    /// [`DatasetError::MissingDataset`] if the file has no coefficients, otherwise as
    /// [`read_range`](Self::read_range).
    pub fn read_coefficients_range(&self, range: Range<usize>) -> Result<Array4<f64>> {
        let ds = self.coefficients.as_ref().ok_or_else(|| self.missing("/coefficients"))?;
        read_rows(ds, &self.path, "/coefficients", range, self.len)
    }

    /// Reads trajectories `range`.
    ///
    /// # Shapes
    ///
    /// Returns `(end - start, T, C, ny, nx)`.
    ///
    /// # Errors
    ///
    /// [`DatasetError::MissingDataset`] if the file has no trajectories, otherwise as
    /// [`read_range`](Self::read_range).
    pub fn read_trajectories_range(&self, range: Range<usize>) -> Result<Array5<f64>> {
        let ds = self.trajectories.as_ref().ok_or_else(|| self.missing("/trajectories"))?;
        read_rows(ds, &self.path, "/trajectories", range, self.len)
    }

    /// Reads trajectory `index`.
    ///
    /// # Shapes
    ///
    /// Returns `(T, C, ny, nx)`.
    ///
    /// # Errors
    ///
    /// As [`read_trajectories_range`](Self::read_trajectories_range).
    pub fn read_trajectory(&self, index: usize) -> Result<Array4<f64>> {
        let batch = self.read_trajectories_range(index..index.saturating_add(1))?;
        let [_, t, c, ny, nx] = batch.dim().into();
        batch
            .into_shape_with_order((t, c, ny, nx))
            .map_err(|e| DatasetError::invalid(&self.path, format!("/trajectories: {e}")))
    }

    /// Iterates over consecutive batches of `batch_size` samples (the last may be shorter),
    /// reading fields and, when present, coefficients.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Invalid`] if `batch_size` is zero; each item may carry a read error.
    pub fn batches(&self, batch_size: usize) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(DatasetError::invalid(&self.path, "batch size must be at least 1"));
        }
        Ok(Batches { reader: self, next: 0, batch_size })
    }

    fn missing(&self, dataset: &str) -> DatasetError {
        DatasetError::MissingDataset { path: self.path.clone(), dataset: dataset.into() }
    }
}

/// Iterator over [`Batch`]es, from [`FieldReader::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    reader: &'a FieldReader,
    next: usize,
    batch_size: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next;
        if start >= self.reader.len {
            return None;
        }
        let end = start.saturating_add(self.batch_size).min(self.reader.len);
        self.next = end;
        let read = || -> Result<Batch> {
            let fields = self.reader.read_range(start..end)?;
            let coefficients = if self.reader.has_coefficients() {
                Some(self.reader.read_coefficients_range(start..end)?)
            } else {
                None
            };
            Ok(Batch { start, fields, coefficients })
        };
        Some(read())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.reader.len.saturating_sub(self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// Reads rows `range` (along axis 0) of a dataset as `f64`, checking the range first.
pub(crate) fn read_rows<D: Dimension>(
    ds: &Dataset,
    path: &Path,
    name: &str,
    range: Range<usize>,
    len: usize,
) -> Result<Array<f64, D>> {
    if range.start > range.end || range.end > len {
        return Err(DatasetError::Range {
            path: path.to_path_buf(),
            dataset: name.into(),
            start: range.start,
            end: range.end,
            len,
        });
    }
    let rank = D::NDIM.unwrap_or_else(|| ds.ndim());
    let mut dims = vec![SliceOrIndex::from(range)];
    dims.extend(std::iter::repeat_n(SliceOrIndex::from(..), rank.saturating_sub(1)));
    ds.read_slice::<f64, _, D>(Selection::from(Hyperslab::from(dims))).map_err(|e| DatasetError::hdf5(path, name, e))
}
