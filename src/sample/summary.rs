//! What a generation run reports about its own fields as they stream past: the largest
//! divergence of velocity fields (absolute and relative, in `f64` before writing), the running
//! mean energy spectrum, and a few fields kept for previews.

use fieldflow_pde::residuals::divergence_residual;
use fieldflow_pde::spectrum::MeanSpectrum;
use fieldflow_pde::{Grid2d, PdeError};
use ndarray::{Array3, Array4, Axis};

/// The running report of generated fields; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct GenerationSummary {
    grid: Grid2d,
    velocity: Option<(usize, usize)>,
    keep: usize,
    /// Max over samples of (max |∇·u|, relative divergence ‖∇·u‖/‖∇u‖); `None` without velocity
    /// channels.
    pub divergence: Option<(f64, f64)>,
    /// The mean power spectrum of all channels.
    pub spectrum: MeanSpectrum,
    /// The first `keep` fields.
    pub previews: Vec<Array3<f64>>,
}

impl GenerationSummary {
    /// A summary of fields on `grid`, velocity in channels `velocity = (u, v)` if any, keeping
    /// the first `keep` fields.
    pub fn new(grid: Grid2d, velocity: Option<(usize, usize)>, keep: usize) -> Self {
        Self {
            grid,
            velocity,
            keep,
            divergence: velocity.map(|_| (0.0, 0.0)),
            spectrum: MeanSpectrum::default(),
            previews: Vec::new(),
        }
    }

    /// Adds a batch `[n, C, ny, nx]`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] if the fields are not on the summary's grid.
    pub fn add(&mut self, fields: &Array4<f64>) -> Result<(), PdeError> {
        if let (Some((u, v)), Some(worst)) = (self.velocity, self.divergence.as_mut()) {
            for sample in fields.axis_iter(Axis(0)) {
                let uv = ndarray::stack(Axis(0), &[sample.index_axis(Axis(0), u), sample.index_axis(Axis(0), v)])
                    .map_err(|_| PdeError::Shape { what: "fields", expected: vec![2], got: sample.shape().to_vec() })?;
                let r = divergence_residual(&self.grid, uv.view())?;
                *worst = (worst.0.max(r.max), worst.1.max(r.relative));
            }
        }
        if self.previews.len() < self.keep {
            let take = (self.keep - self.previews.len()).min(fields.dim().0);
            self.previews.extend(fields.axis_iter(Axis(0)).take(take).map(|f| f.to_owned()));
        }
        self.spectrum.add(&self.grid, fields.view())
    }
}
