//! Helpers shared by the integration tests: deterministic asymmetric patterns (every index
//! contributes a different power of ten, so any axis mix-up changes the values), metadata and
//! small files.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use fieldflow_datasets::{Boundary, Dtype, FieldWriter, FileSpec, Grid, Metadata, WriterOptions, Written};
use ndarray::{Array4, Array5};

/// `n * 1000 + c * 100 + y * 10 + x + 0.25`: exact in float32 for the small sizes used here.
pub fn pattern(n: usize, c: usize, y: usize, x: usize) -> f64 {
    (n * 1000 + c * 100 + y * 10 + x) as f64 + 0.25
}

/// Coefficients: a different pattern so fields and coefficients cannot be confused.
pub fn coef_pattern(n: usize, c: usize, y: usize, x: usize) -> f64 {
    -((n * 1000 + c * 100 + y * 10 + x) as f64) - 0.5
}

/// Trajectory frame `t`.
pub fn traj_pattern(n: usize, t: usize, c: usize, y: usize, x: usize) -> f64 {
    (n * 10000 + t * 1000 + c * 100 + y * 10 + x) as f64 + 0.125
}

pub fn fields(start: usize, b: usize, c: usize, ny: usize, nx: usize) -> Array4<f64> {
    Array4::from_shape_fn((b, c, ny, nx), |(n, c, y, x)| pattern(start + n, c, y, x))
}

pub fn coefficients(start: usize, b: usize, c: usize, ny: usize, nx: usize) -> Array4<f64> {
    Array4::from_shape_fn((b, c, ny, nx), |(n, c, y, x)| coef_pattern(start + n, c, y, x))
}

pub fn trajectories(start: usize, b: usize, t: usize, c: usize, ny: usize, nx: usize) -> Array5<f64> {
    Array5::from_shape_fn((b, t, c, ny, nx), |(n, t, c, y, x)| traj_pattern(start + n, t, c, y, x))
}

/// Metadata with channels `u, v`, coefficient `a`, a 2 x 1 periodic domain and a seed.
pub fn metadata(with_coefficients: bool) -> Metadata {
    let mut m = Metadata::new("navier_stokes", &["u", "v"]);
    if with_coefficients {
        m.coefficient_channels = vec!["a".into()];
    }
    m.lx = 2.0;
    m.ly = 1.0;
    m.boundary = Boundary::Periodic;
    m.seed = Some(42);
    m.config = "# test\n[data]\nsamples = 5\n".into();
    m
}

pub const NX: usize = 6;
pub const NY: usize = 4;
pub const T: usize = 3;
pub const TIME: [f64; T] = [0.0, 0.5, 1.25];

pub fn spec(dtype: Dtype, with_coefficients: bool, with_trajectories: bool) -> FileSpec {
    let spec = FileSpec::new(metadata(with_coefficients), Grid::periodic(NX, NY, 2.0, 1.0), dtype);
    if with_trajectories { spec.with_time(TIME.to_vec()) } else { spec }
}

/// Writes `n` samples in batches of `batch` (fields, coefficients and trajectories as asked).
pub fn write_file(path: &Path, n: usize, batch: usize, spec: FileSpec, options: &WriterOptions) -> Written {
    let with_coef = !spec.metadata.coefficient_channels.is_empty();
    let with_traj = spec.time.is_some();
    let mut w = FieldWriter::create(path, spec, options).unwrap();
    let mut start = 0;
    while start < n {
        let b = batch.min(n - start);
        let c = coefficients(start, b, 1, NY, NX);
        w.append(fields(start, b, 2, NY, NX).view(), with_coef.then(|| c.view())).unwrap();
        if with_traj {
            w.append_trajectories(trajectories(start, b, T, 2, NY, NX).view()).unwrap();
        }
        start += b;
    }
    w.finish().unwrap()
}

/// The names in a directory, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.h5");
    (dir, path)
}
