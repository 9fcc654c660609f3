//! What plots read from data files: the sample-mean energy spectrum of a file.

use std::path::Path;

use anyhow::{Context, Result};
use fieldflow_datasets::{FieldSource, open_source};
use fieldflow_pde::Grid2d;
use fieldflow_pde::spectrum::mean_power_spectrum;
use ndarray::Axis;

use crate::error::BadInput;

/// Samples read per batch.
const BATCH: usize = 64;

fn open(path: &Path) -> Result<Box<dyn FieldSource>> {
    let source = open_source(path).map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    if source.is_empty() {
        return Err(BadInput(format!("{} holds no samples", path.display())).into());
    }
    Ok(source)
}

/// The sample-mean spectrum of `file` (velocity channels, else all channels) over its first
/// `max_samples` samples, on the resolved shells: `(k, E(k), velocity?, samples)`.
///
/// # Errors
/// [`BadInput`] for an unreadable or empty file or a grid without a spectrum.
pub fn file_mean_spectrum(file: &Path, max_samples: Option<usize>) -> Result<(Vec<f64>, Vec<f64>, bool, usize)> {
    let source = open(file)?;
    let meta = source.metadata();
    let [c, ny, nx] = source.sample_shape();
    let uv = meta.physics().roles.velocity;
    let channels: Vec<usize> = match uv {
        Some((u, v)) => vec![u, v],
        None => (0..c).collect(),
    };
    let grid = Grid2d::new(nx, ny, meta.lx, meta.ly)
        .map_err(|e| BadInput(format!("{}: cannot compute a spectrum on this grid: {e}", file.display())))?;
    let n = max_samples.map_or(source.len(), |m| m.min(source.len()));
    if n == 0 {
        return Err(BadInput("--max-samples must be at least 1".into()).into());
    }
    let mut sum: Option<(Vec<f64>, Vec<f64>)> = None;
    for start in (0..n).step_by(BATCH) {
        let range = start..(start + BATCH).min(n);
        let batch = source.read_fields(range.clone()).with_context(|| format!("reading {}", file.display()))?;
        let selected = batch.select(Axis(1), &channels);
        let spec = mean_power_spectrum(&grid, selected.view())
            .with_context(|| format!("spectrum of samples {range:?} of {}", file.display()))?;
        let weight = range.len() as f64;
        match &mut sum {
            None => sum = Some((spec.k, spec.energy.iter().map(|e| e * weight).collect())),
            Some((_, e)) => e.iter_mut().zip(&spec.energy).for_each(|(a, b)| *a += b * weight),
        }
    }
    let (mut k, mut e) = sum.context("no samples")?;
    e.iter_mut().for_each(|v| *v /= n as f64);
    // Shells past the Nyquist wavenumber are only partly resolved (the corners of the square of
    // modes): drop them.
    let nyquist = grid.kx()[nx / 2].min(grid.ky()[ny / 2].abs()) * (1.0 + 1e-9);
    let resolved = k.iter().take_while(|k| **k <= nyquist).count();
    k.truncate(resolved);
    e.truncate(resolved);
    Ok((k, e, uv.is_some(), n))
}
