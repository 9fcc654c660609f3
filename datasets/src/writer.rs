//! Streaming writer of native files: batches of samples are appended to resizable, chunked
//! datasets, so a file may hold more samples than fit in memory.
//!
//! The file is written under a temporary name beside the target and renamed in
//! [`FieldWriter::finish`], which also stores the normalisation statistics and writes the XDMF
//! sidecar. A writer dropped before `finish` (an error, a panic, Ctrl-C handled by unwinding)
//! removes its temporary file; a killed process never leaves a file at the final path.
//!
//! Producers may compute batches in parallel; they are appended in sample order, one `append` per
//! batch (the writer is `Send`, so it can live on a dedicated writer thread).

use std::path::{Path, PathBuf};

use hdf5::{Dataset, Extent, File, Hyperslab, Selection, SimpleExtents, SliceOrIndex};
use ndarray::{ArrayD, ArrayView, ArrayView4, ArrayView5, Axis, RemoveAxis};

use crate::atomic::AtomicTarget;
use crate::error::{DatasetError, Result, ShapeDisplay};
use crate::metadata::{Dtype, Grid, Metadata};
use crate::stats::RunningStats;
use crate::xdmf::{self, XdmfLayout};

/// Target chunk size in bytes when [`WriterOptions::chunk_samples`] is not set.
const CHUNK_BYTES: usize = 1 << 20;
/// At most this many samples per chunk by default, so that reading one random sample does not
/// read (and decompress) many others.
const MAX_CHUNK_SAMPLES: usize = 64;

/// What a file will hold: attributes, grid, precision and (optionally) trajectory times.
///
/// The per-sample shape is `(C, ny, nx)` with `C = metadata.channels.len()`,
/// `ny = grid.ny()`, `nx = grid.nx()`; `/coefficients` exists when
/// `metadata.coefficient_channels` is not empty; `/trajectories` and `/time` exist when `time`
/// is set.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// Root attributes.
    pub metadata: Metadata,
    /// Grid coordinates.
    pub grid: Grid,
    /// On-disk precision of `/fields`, `/coefficients` and `/trajectories`.
    pub dtype: Dtype,
    /// Times of the trajectory frames; `Some` creates `/trajectories` (N, T, C, ny, nx) and `/time`.
    pub time: Option<Vec<f64>>,
}

impl FileSpec {
    /// A spec without trajectories.
    #[must_use]
    pub fn new(metadata: Metadata, grid: Grid, dtype: Dtype) -> Self {
        Self { metadata, grid, dtype, time: None }
    }

    /// Adds trajectories with the given frame times.
    #[must_use]
    pub fn with_time(mut self, time: Vec<f64>) -> Self {
        self.time = Some(time);
        self
    }

    /// The per-sample shape `[C, ny, nx]`.
    #[must_use]
    pub fn sample_shape(&self) -> [usize; 3] {
        [self.metadata.channels.len(), self.grid.ny(), self.grid.nx()]
    }

    fn validate(&self, path: &Path) -> Result<()> {
        self.metadata.validate(path)?;
        let (nx, ny) = (self.grid.nx(), self.grid.ny());
        if nx == 0 || ny == 0 {
            return Err(DatasetError::invalid(path, format!("grid must not be empty (nx = {nx}, ny = {ny})")));
        }
        if self.grid.x.iter().chain(&self.grid.y).any(|v| !v.is_finite()) {
            return Err(DatasetError::invalid(path, "grid coordinates must be finite"));
        }
        if let Some(time) = &self.time {
            if time.is_empty() {
                return Err(DatasetError::invalid(path, "trajectories need at least one time (/time is empty)"));
            }
            if time.iter().any(|t| !t.is_finite()) {
                return Err(DatasetError::invalid(path, "/time values must be finite"));
            }
        }
        Ok(())
    }
}

/// How a file is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriterOptions {
    /// Samples per chunk along N; `None` picks as many as fit in about 1 MiB, between 1 and 64.
    pub chunk_samples: Option<usize>,
    /// gzip (deflate) level 0-9 with the shuffle filter; `None` stores chunks uncompressed.
    pub gzip: Option<u8>,
    /// Replace an existing file at the target path (and its `.xdmf`).
    pub force: bool,
}

/// What [`FieldWriter::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The HDF5 file.
    pub path: PathBuf,
    /// Its XDMF sidecar.
    pub xdmf: PathBuf,
    /// Number of samples.
    pub samples: usize,
}

/// Streaming writer of the native layout (version 1).
///
/// Batches are appended in sample order to resizable, chunked datasets. The file is written
/// under a temporary name beside the target and renamed by [`finish`](Self::finish), which also
/// stores the statistics and writes the XDMF sidecar; dropping an unfinished writer removes the
/// temporary file. The writer is `Send`: batches computed in parallel can be handed to it on one
/// thread, in order.
#[derive(Debug)]
pub struct FieldWriter {
    // Declared before `target` so that the HDF5 handles close before the temporary file is
    // removed when an unfinished writer is dropped.
    fields: Dataset,
    coefficients: Option<Dataset>,
    trajectories: Option<Dataset>,
    file: File,
    spec: FileSpec,
    n_fields: usize,
    n_trajectories: usize,
    stats_fields: RunningStats,
    stats_coefficients: Option<RunningStats>,
    stats_trajectories: Option<RunningStats>,
    xdmf_target: PathBuf,
    target: AtomicTarget,
}

impl FieldWriter {
    /// Creates the temporary file beside `path`, writes the attributes, grid and time, and
    /// creates the empty resizable datasets.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Exists`] if `path` (or its `.xdmf` sidecar) exists and
    /// `options.force` is false; [`DatasetError::Invalid`] for inconsistent metadata, an empty
    /// grid or time axis, or a gzip level above 9; [`DatasetError::Io`] /
    /// [`DatasetError::Hdf5`] if the file cannot be created.
    pub fn create(path: impl AsRef<Path>, spec: FileSpec, options: &WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        spec.validate(path)?;
        if let Some(level) = options.gzip.filter(|&l| l > 9) {
            return Err(DatasetError::invalid(path, format!("gzip level {level} is out of range 0-9")));
        }
        let xdmf_target = xdmf::sidecar_path(path)?;
        if !options.force && std::fs::symlink_metadata(&xdmf_target).is_ok() {
            return Err(DatasetError::Exists { path: xdmf_target });
        }
        let target = AtomicTarget::new(path, options.force)?;
        let file = File::create_excl(target.temp()).map_err(|e| DatasetError::hdf5(path, "/", e))?;
        spec.metadata.write(&file, path)?;
        let grid = file.create_group("grid").map_err(|e| DatasetError::hdf5(path, "/grid", e))?;
        crate::h5::write_f64_dataset(&grid, path, "x", &spec.grid.x)?;
        crate::h5::write_f64_dataset(&grid, path, "y", &spec.grid.y)?;

        let [c, ny, nx] = spec.sample_shape();
        let ca = spec.metadata.coefficient_channels.len();
        let sample_bytes = c * ny * nx * spec.dtype.size();
        let chunk_n =
            options.chunk_samples.unwrap_or((CHUNK_BYTES / sample_bytes.max(1)).min(MAX_CHUNK_SAMPLES)).max(1);
        let create = |name: &str, shape: &[usize], chunk: &[usize]| {
            create_dataset(&file, path, name, shape, chunk, spec.dtype, options.gzip)
        };
        let fields = create("fields", &[c, ny, nx], &[chunk_n, c, ny, nx])?;
        let coefficients =
            if ca > 0 { Some(create("coefficients", &[ca, ny, nx], &[chunk_n, ca, ny, nx])?) } else { None };
        let trajectories = match &spec.time {
            Some(time) => {
                crate::h5::write_f64_dataset(&file, path, "time", time)?;
                let t = time.len();
                let chunk_t = (CHUNK_BYTES / sample_bytes.max(1)).clamp(1, t);
                Some(create("trajectories", &[t, c, ny, nx], &[1, chunk_t, c, ny, nx])?)
            }
            None => None,
        };
        Ok(Self {
            fields,
            coefficients,
            trajectories,
            file,
            n_fields: 0,
            n_trajectories: 0,
            stats_fields: RunningStats::new(c),
            stats_coefficients: (ca > 0).then(|| RunningStats::new(ca)),
            stats_trajectories: spec.time.as_ref().map(|_| RunningStats::new(c)),
            spec,
            xdmf_target,
            target,
        })
    }

    /// The final path of the file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.target.target()
    }

    /// What the file holds.
    #[must_use]
    pub fn spec(&self) -> &FileSpec {
        &self.spec
    }

    /// Number of samples appended to `/fields` so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.n_fields
    }

    /// Whether no sample has been appended yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n_fields == 0
    }

    /// Number of trajectories appended so far.
    #[must_use]
    pub fn trajectories_len(&self) -> usize {
        self.n_trajectories
    }

    /// Appends a batch of samples (converted to the file's precision).
    ///
    /// # Shapes
    ///
    /// `fields`: `(B, C, ny, nx)`; `coefficients`: `(B, Ca, ny, nx)`, required exactly when the
    /// metadata names coefficient channels.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Shape`] for a wrong shape, [`DatasetError::Invalid`] if coefficients are
    /// missing or unexpected, [`DatasetError::NonFinite`] for NaN, infinite or (for float32
    /// files) overflowing values (naming the sample index in the file), [`DatasetError::Hdf5`]
    /// if writing fails. Nothing is appended when an error is returned.
    pub fn append(&mut self, fields: ArrayView4<'_, f64>, coefficients: Option<ArrayView4<'_, f64>>) -> Result<()> {
        let path = self.target.target().to_path_buf();
        let [c, ny, nx] = self.spec.sample_shape();
        let b = fields.len_of(Axis(0));
        check_shape(&path, "/fields", fields.shape(), &[b, c, ny, nx], "(B, C, ny, nx)")?;
        let start = self.n_fields;
        let fields_data = convert(&path, "/fields", start, fields, self.spec.dtype)?;
        let coef_data = match (&self.coefficients, coefficients) {
            (Some(_), Some(coef)) => {
                let ca = self.spec.metadata.coefficient_channels.len();
                check_shape(&path, "/coefficients", coef.shape(), &[b, ca, ny, nx], "(B, Ca, ny, nx)")?;
                Some(convert(&path, "/coefficients", start, coef, self.spec.dtype)?)
            }
            (Some(_), None) => {
                return Err(DatasetError::invalid(
                    &path,
                    "/coefficients: the file has coefficient channels but append() was given none",
                ));
            }
            (None, Some(_)) => {
                return Err(DatasetError::invalid(
                    &path,
                    "/coefficients: append() was given coefficients but the metadata names no coefficient channels",
                ));
            }
            (None, None) => None,
        };
        write_rows(&self.fields, &path, "/fields", start, &fields_data)?;
        if let (Some(ds), Some(data)) = (&self.coefficients, &coef_data) {
            write_rows(ds, &path, "/coefficients", start, data)?;
        }
        self.stats_fields.update(fields_data.as_f64().view(), 1);
        if let (Some(stats), Some(data)) = (&mut self.stats_coefficients, &coef_data) {
            stats.update(data.as_f64().view(), 1);
        }
        self.n_fields += b;
        Ok(())
    }

    /// Appends a batch of trajectories (converted to the file's precision).
    ///
    /// # Shapes
    ///
    /// `trajectories`: `(B, T, C, ny, nx)` with `T` the length of the spec's `time`.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Invalid`] if the file has no trajectories (no `time` in the spec),
    /// otherwise as [`append`](Self::append).
    pub fn append_trajectories(&mut self, trajectories: ArrayView5<'_, f64>) -> Result<()> {
        let path = self.target.target().to_path_buf();
        let Some(ds) = &self.trajectories else {
            return Err(DatasetError::invalid(
                &path,
                "/trajectories: the file was created without trajectory times (FileSpec::time is None)",
            ));
        };
        let [c, ny, nx] = self.spec.sample_shape();
        let t = self.spec.time.as_ref().map_or(0, Vec::len);
        let b = trajectories.len_of(Axis(0));
        check_shape(&path, "/trajectories", trajectories.shape(), &[b, t, c, ny, nx], "(B, T, C, ny, nx)")?;
        let start = self.n_trajectories;
        let data = convert(&path, "/trajectories", start, trajectories, self.spec.dtype)?;
        write_rows(ds, &path, "/trajectories", start, &data)?;
        if let Some(stats) = &mut self.stats_trajectories {
            stats.update(data.as_f64().view(), 2);
        }
        self.n_trajectories += b;
        Ok(())
    }

    /// Stores the statistics, closes the file, renames it to its final path and writes the XDMF
    /// sidecar (also atomically).
    ///
    /// # Errors
    ///
    /// [`DatasetError::Invalid`] if trajectories were declared but their count differs from the
    /// number of samples; [`DatasetError::Exists`] if the target appeared meanwhile and `force`
    /// is off; [`DatasetError::Hdf5`] / [`DatasetError::Io`] on write or rename failures. On error
    /// the temporary file is removed and nothing is left at the final path.
    pub fn finish(self) -> Result<Written> {
        let path = self.target.target().to_path_buf();
        if self.trajectories.is_some() && self.n_trajectories != self.n_fields {
            return Err(DatasetError::invalid(
                &path,
                format!(
                    "/trajectories holds {} samples but /fields holds {}; append as many trajectories as samples",
                    self.n_trajectories, self.n_fields
                ),
            ));
        }
        self.stats_fields.stats().write(&self.file, &path, "fields")?;
        if let Some(stats) = &self.stats_coefficients {
            stats.stats().write(&self.file, &path, "coefficients")?;
        }
        if let Some(stats) = &self.stats_trajectories {
            stats.stats().write(&self.file, &path, "trajectories")?;
        }
        // A batch whose write failed half-way may have grown a dataset past the samples that
        // count; trim every dataset to them.
        for (ds, name, n) in [
            (Some(&self.fields), "/fields", self.n_fields),
            (self.coefficients.as_ref(), "/coefficients", self.n_fields),
            (self.trajectories.as_ref(), "/trajectories", self.n_trajectories),
        ] {
            if let Some(ds) = ds {
                let mut shape = ds.shape();
                if shape.first() != Some(&n) {
                    shape[0] = n;
                    ds.resize(shape).map_err(|e| DatasetError::hdf5(&path, name, e))?;
                }
            }
        }
        let layout = XdmfLayout::new(&path, &self.spec, self.n_fields)?;
        let Self { fields, coefficients, trajectories, file, target, xdmf_target, .. } = self;
        drop((fields, coefficients, trajectories));
        file.flush().map_err(|e| DatasetError::hdf5(&path, "/", e))?;
        file.close().map_err(|e| DatasetError::hdf5(&path, "/", e))?;
        target.commit()?;
        // An existing sidecar was refused in `create` unless `force`, so replacing it is intended.
        crate::atomic::write_atomic(&xdmf_target, xdmf::render(&layout).as_bytes(), true)?;
        Ok(Written { path, xdmf: xdmf_target, samples: layout.samples })
    }
}

/// Data converted to the file's precision, ready to write.
enum Converted {
    F32(ArrayD<f32>, ArrayD<f64>),
    F64(ArrayD<f64>),
}

impl Converted {
    /// The values as stored, in f64 (for the statistics).
    fn as_f64(&self) -> &ArrayD<f64> {
        match self {
            Self::F32(_, stored) | Self::F64(stored) => stored,
        }
    }
}

fn check_shape(path: &Path, dataset: &str, found: &[usize], expected: &[usize], names: &str) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(DatasetError::shape(
            path,
            format!("{dataset} (input batch)"),
            format!("{names} = {}", ShapeDisplay(expected)),
            found,
        ))
    }
}

/// Checks finiteness and converts to the file's precision, in standard layout.
fn convert<D: RemoveAxis>(
    path: &Path,
    dataset: &str,
    start: usize,
    data: ArrayView<'_, f64, D>,
    dtype: Dtype,
) -> Result<Converted> {
    let non_finite = |b: usize, what: String| DatasetError::NonFinite {
        path: path.to_path_buf(),
        dataset: dataset.to_owned(),
        sample: start + b,
        what,
    };
    for (b, sample) in data.axis_iter(Axis(0)).enumerate() {
        if let Some(v) = sample.iter().find(|v| !v.is_finite()) {
            return Err(non_finite(b, if v.is_nan() { "NaN".into() } else { format!("infinite value {v}") }));
        }
        let overflow = if dtype == Dtype::F32 { sample.iter().find(|&&v| v.abs() > f64::from(f32::MAX)) } else { None };
        if let Some(v) = overflow {
            return Err(non_finite(b, format!("value {v:e} overflows float32")));
        }
    }
    let shape = data.shape().to_vec();
    let to_err = |e: ndarray::ShapeError| DatasetError::invalid(path, format!("{dataset}: {e}"));
    Ok(match dtype {
        Dtype::F32 => {
            let single: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            let stored: Vec<f64> = single.iter().map(|&v| f64::from(v)).collect();
            Converted::F32(
                ArrayD::from_shape_vec(shape.clone(), single).map_err(to_err)?,
                ArrayD::from_shape_vec(shape, stored).map_err(to_err)?,
            )
        }
        Dtype::F64 => Converted::F64(ArrayD::from_shape_vec(shape, data.iter().copied().collect()).map_err(to_err)?),
    })
}

/// Grows `ds` along axis 0 and writes `data` at rows `start..start + B`.
fn write_rows(ds: &Dataset, path: &Path, name: &str, start: usize, data: &Converted) -> Result<()> {
    let h5 = |e| DatasetError::hdf5(path, name, e);
    let shape = data.as_f64().shape();
    let b = shape[0];
    if b == 0 {
        return Ok(());
    }
    let mut new_shape = shape.to_vec();
    new_shape[0] = start + b;
    ds.resize(new_shape).map_err(h5)?;
    let mut dims = vec![SliceOrIndex::from(start..start + b)];
    dims.extend(std::iter::repeat_n(SliceOrIndex::from(..), shape.len() - 1));
    let selection = Selection::from(Hyperslab::from(dims));
    match data {
        Converted::F32(values, _) => ds.write_slice(values, selection),
        Converted::F64(values) => ds.write_slice(values, selection),
    }
    .map_err(h5)
}

/// Creates an empty dataset `(0, rest...)`, resizable along axis 0, chunked, optionally gzipped.
fn create_dataset(
    file: &File,
    path: &Path,
    name: &str,
    rest: &[usize],
    chunk: &[usize],
    dtype: Dtype,
    gzip: Option<u8>,
) -> Result<Dataset> {
    let mut extents = vec![Extent::resizable(0)];
    extents.extend(rest.iter().map(|&d| Extent::fixed(d)));
    let chunk_bytes = chunk.iter().product::<usize>() * dtype.size();
    let mut builder = match dtype {
        Dtype::F32 => file.new_dataset::<f32>(),
        Dtype::F64 => file.new_dataset::<f64>(),
    }
    .chunk(chunk.to_vec())
    // Room for a few chunks so that batches not aligned with chunks do not re-read them.
    .chunk_cache(521, (4 * chunk_bytes).max(16 << 20), 1.0);
    if let Some(level) = gzip {
        builder = builder.shuffle().deflate(level);
    }
    builder
        .shape(SimpleExtents::from_vec(extents))
        .create(name)
        .map_err(|e| DatasetError::hdf5(path, format!("/{name}"), e))
}
