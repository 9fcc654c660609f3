//! Batch sampling that streams to an HDF5 writer: draw source samples `i = 0..n` (each from its
//! own `(seed, i)` stream), integrate the flow ODE batch by batch, map the results back to data
//! units and append them to a [`FieldWriter`], so `n` can exceed memory.

use std::ops::Range;

use burn::tensor::Device;
use fieldflow_datasets::{DatasetError, FieldWriter};
use ndarray::{Array4, Ix4};
use thiserror::Error;

use super::{SolveError, SolveOptions, Solver, VelocityField, solve};
use crate::constraint::to_array;
use crate::noise::{NoiseError, SourceSampler};

/// A failure while sampling to a file.
#[derive(Debug, Error)]
pub enum StreamError {
    /// Drawing the source samples failed.
    #[error("drawing source samples {start}..{end}: {source}")]
    Noise {
        /// First sample of the batch.
        start: u64,
        /// End of the batch.
        end: u64,
        /// The cause.
        #[source]
        source: NoiseError,
    },
    /// The ODE solve failed.
    #[error("sampling {start}..{end}: {source}")]
    Solve {
        /// First sample of the batch.
        start: u64,
        /// End of the batch.
        end: u64,
        /// The cause.
        #[source]
        source: SolveError,
    },
    /// Reading the samples back from the device failed.
    #[error("reading samples back from the device: {0}")]
    Readback(String),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] DatasetError),
    /// A bad argument.
    #[error("invalid argument `{name}`: {reason}")]
    Argument {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Samples `indices` in batches of `batch` and appends them to `writer` after `to_data` (e.g.
/// undoing the training normalisation, or projecting onto constraints). `progress(done)` is called
/// after each batch.
///
/// # Errors
/// [`StreamError`] naming the batch at fault; nothing further is appended after an error.
#[allow(clippy::too_many_arguments)]
pub fn sample_to_writer<F: VelocityField<4> + ?Sized>(
    field: &F,
    source: &SourceSampler,
    seed: u64,
    indices: Range<u64>,
    batch: usize,
    solver: &Solver,
    options: &SolveOptions,
    device: &Device,
    writer: &mut FieldWriter,
    mut to_data: impl FnMut(Array4<f64>) -> Array4<f64>,
    mut progress: impl FnMut(u64),
) -> Result<(), StreamError> {
    if batch == 0 {
        return Err(StreamError::Argument { name: "batch", reason: "must be at least 1" });
    }
    let mut start = indices.start;
    while start < indices.end {
        let end = (start + batch as u64).min(indices.end);
        let x0 = source.sample(seed, start..end, device).map_err(|source| StreamError::Noise { start, end, source })?;
        let solution = solve(field, x0, solver, options).map_err(|source| StreamError::Solve { start, end, source })?;
        let x1 = to_array(solution.x)
            .map_err(StreamError::Readback)?
            .into_dimensionality::<Ix4>()
            .map_err(|e| StreamError::Readback(e.to_string()))?;
        writer.append(to_data(x1).view(), None)?;
        progress(end - indices.start);
        start = end;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::noise::SourceMeasure;
    use burn::tensor::Tensor;
    use fieldflow_datasets::{Dtype, FieldReader, FileSpec, Grid, Metadata, WriterOptions};
    use fieldflow_pde::Grid2d;

    #[test]
    fn streamed_samples_equal_one_big_batch_and_the_exact_flow() {
        // v(x, t) = x integrates to x(1) = e·x(0): the file must hold e·x0 for every sample,
        // whatever the batch size, so sample i depends only on (seed, i).
        let device = Device::default();
        let grid = Grid2d::square(8, 1.0).unwrap();
        let source = SourceMeasure::White.sampler(&grid, 2).unwrap();
        let field = |x: Tensor<4>, _t: f64| x;
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for batch in [3, 7] {
            let path = dir.path().join(format!("s{batch}.h5"));
            let spec = FileSpec::new(Metadata::new("test", &["u", "v"]), Grid::periodic(8, 8, 1.0, 1.0), Dtype::F64);
            let mut writer = FieldWriter::create(&path, spec, &WriterOptions::default()).unwrap();
            let mut seen = Vec::new();
            sample_to_writer(
                &field,
                &source,
                5,
                0..7,
                batch,
                &Solver::Rk4,
                &SolveOptions::uniform(16),
                &device,
                &mut writer,
                |x| x,
                |done| seen.push(done),
            )
            .unwrap();
            writer.finish().unwrap();
            assert_eq!(*seen.last().unwrap(), 7);
            files.push(FieldReader::open(&path).unwrap().read_range(0..7).unwrap());
        }
        assert_eq!(files[0], files[1]);
        let x0 = source.sample_array(5, 0..7).unwrap().mapv(|v| f64::from(v as f32));
        let exact = x0.mapv(|v| v * std::f64::consts::E);
        let err = (&files[0] - &exact).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-5 * exact.iter().fold(0.0_f64, |m, v| m.max(v.abs())), "{err}");
    }
}
