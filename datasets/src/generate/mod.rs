//! Data-generation pipelines over the `pde` crate: 2D Navier–Stokes (FNO setting), Kolmogorov
//! flow and Darcy flow.
//!
//! A [`Generator`] describes its output (channels, grid, boundary) and produces sample `i` from
//! the random stream `(seed, i)` alone, so serial, parallel and sharded runs produce identical
//! samples. [`generate`] runs a generator over an index range in parallel batches and hands the
//! batches, in index order, to a sink (usually the HDF5 writer).

mod darcy;
mod kolmogorov;
mod ns2d;

use std::ops::Range;

use fieldflow_pde::PdeError;
use ndarray::{Array3, Array4};
use rayon::prelude::*;
use thiserror::Error;

pub use crate::metadata::Boundary;
pub use darcy::{CoefficientFamily, DarcyGenerator, DarcyParams};
pub use kolmogorov::{KolmogorovGenerator, KolmogorovParams};
pub use ns2d::{Ns2dGenerator, Ns2dParams, NsOutput};

/// A generation failure, naming the sample at fault.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// The numerics rejected the parameters (before any sample was made).
    #[error("invalid generation parameters: {0}")]
    Parameters(PdeError),
    /// Sample `index` failed (e.g. a simulation blew up).
    #[error("sample {index}: {cause}")]
    Sample {
        /// The sample index.
        index: u64,
        /// What went wrong (in the message, so not a `source`: printed once).
        cause: PdeError,
    },
    /// A shard specification is invalid.
    #[error("invalid shard `{spec}`: {reason}")]
    Shard {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The sink (e.g. the file writer) failed.
    #[error("writing the samples failed")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a generator produces: enough to write a file's metadata before the first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The PDE (`"navier_stokes"`, `"kolmogorov"`, `"darcy"`).
    pub pde: &'static str,
    /// Names of the field channels.
    pub channels: Vec<String>,
    /// Names of the coefficient channels (empty if none).
    pub coefficient_channels: Vec<String>,
    /// Snapshot times of the trajectories (empty if none).
    pub times: Vec<f64>,
    /// Output grid size `(ny, nx)`.
    pub shape: (usize, usize),
    /// Grid coordinates.
    pub x: Vec<f64>,
    /// Grid coordinates.
    pub y: Vec<f64>,
    /// Domain lengths.
    pub lx: f64,
    /// Domain lengths.
    pub ly: f64,
    /// Boundary conditions.
    pub boundary: Boundary,
    /// The viscosity, drag and forcing of a flow (stored in the file's metadata).
    pub flow: Option<fieldflow_pde::turbulence::FlowParameters>,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The field `(C, ny, nx)`.
    pub fields: Array3<f64>,
    /// Inputs such as Darcy's coefficient or the initial vorticity, `(Ca, ny, nx)`.
    pub coefficients: Option<Array3<f64>>,
    /// Snapshots `(T, C, ny, nx)` at [`Description::times`].
    pub trajectory: Option<Array4<f64>>,
}

/// A data generator: sample `index` depends only on `(seed, index)`.
pub trait Generator: Sync {
    /// What the generator produces.
    fn describe(&self) -> Description;

    /// Generates sample `index`.
    ///
    /// # Errors
    /// [`GenerateError::Sample`] when the numerics fail for this sample.
    fn sample(&self, seed: u64, index: u64) -> Result<Sample, GenerateError>;
}

/// A shard `index` of `count` (0-based), as given on the command line as `i/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// Parses `i/n`.
    ///
    /// # Errors
    /// [`GenerateError::Shard`] if the text is not `i/n` with `0 ≤ i < n`.
    ///
    /// ```
    /// use fieldflow_datasets::generate::Shard;
    /// let s = Shard::parse("1/4").unwrap();
    /// assert_eq!(s.range(10), 2..5);
    /// assert!(Shard::parse("4/4").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<Self, GenerateError> {
        let bad = |reason| GenerateError::Shard { spec: spec.to_string(), reason };
        let (i, n) = spec.split_once('/').ok_or_else(|| bad("expected `i/n`, e.g. `0/8`"))?;
        let index: u64 = i.trim().parse().map_err(|_| bad("`i` must be a non-negative integer"))?;
        let count: u64 = n.trim().parse().map_err(|_| bad("`n` must be a positive integer"))?;
        if count == 0 || index >= count {
            return Err(bad("need 0 <= i < n"));
        }
        Ok(Self { index, count })
    }

    /// The sample indices of this shard among `total`: contiguous, balanced, covering
    /// `0..total` exactly once over all shards.
    pub fn range(&self, total: u64) -> Range<u64> {
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        start..end
    }
}

/// Generates samples `indices` in parallel batches of `batch` and passes each batch, in index
/// order, to `sink`; `progress(n)` is called after each batch with the samples done so far.
///
/// # Errors
/// The first sample failure (by index) or sink failure.
pub fn generate(
    generator: &dyn Generator,
    seed: u64,
    indices: Range<u64>,
    batch: usize,
    mut sink: impl FnMut(u64, Vec<Sample>) -> Result<(), GenerateError>,
    mut progress: impl FnMut(u64),
) -> Result<(), GenerateError> {
    let batch = batch.max(1) as u64;
    let mut start = indices.start;
    while start < indices.end {
        let end = (start + batch).min(indices.end);
        let samples: Vec<Sample> =
            (start..end).into_par_iter().map(|i| generator.sample(seed, i)).collect::<Result<_, _>>()?;
        sink(start, samples)?;
        progress(end - indices.start);
        start = end;
    }
    Ok(())
}

/// Stacks samples' fields into `[n, C, ny, nx]` (and coefficients / trajectories likewise).
pub fn stack(samples: &[Sample]) -> (Array4<f64>, Option<Array4<f64>>, Option<ndarray::Array5<f64>>) {
    let views: Vec<_> = samples.iter().map(|s| s.fields.view()).collect();
    let fields = ndarray::stack(ndarray::Axis(0), &views).unwrap_or_else(|_| Array4::zeros((0, 0, 0, 0)));
    let coefficients = samples
        .iter()
        .map(|s| s.coefficients.as_ref().map(|c| c.view()))
        .collect::<Option<Vec<_>>>()
        .and_then(|v| ndarray::stack(ndarray::Axis(0), &v).ok());
    let trajectories = samples
        .iter()
        .map(|s| s.trajectory.as_ref().map(|c| c.view()))
        .collect::<Option<Vec<_>>>()
        .and_then(|v| ndarray::stack(ndarray::Axis(0), &v).ok());
    (fields, coefficients, trajectories)
}

/// Periodic grid coordinates `j L / n`.
pub(crate) fn periodic_coords(n: usize, l: f64) -> Vec<f64> {
    (0..n).map(|j| j as f64 * l / n as f64).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_index_range() {
        for total in [0_u64, 1, 7, 10, 64] {
            for count in 1..6 {
                let mut covered = Vec::new();
                for index in 0..count {
                    let r = Shard { index, count }.range(total);
                    assert!(r.end - r.start <= total.div_ceil(count));
                    covered.extend(r);
                }
                assert_eq!(covered, (0..total).collect::<Vec<_>>());
            }
        }
        for bad in ["", "1", "a/2", "2/2", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
