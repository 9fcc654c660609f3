//! Spectral filters of periodic fields.
//!
//! [`band_limit`] keeps the Fourier modes `|m_x|, |m_y| ≤ m` of every field and zeroes the others:
//! the orthogonal projection onto band-limited trigonometric polynomials. It is a Fourier
//! multiplier, like the Leray projection, so the two commute and divergence-free fields stay
//! divergence-free. `m` counts modes of the periodic domain, so it means the same at every
//! resolution.

use ndarray::{ArrayViewMut2, ArrayViewMut4};
use num_complex::Complex64;
use rayon::prelude::*;

use crate::grid::signed_index;
use crate::{Grid2d, Result};

/// Keeps only the Fourier modes `|m_x|, |m_y| ≤ m` of every field of `a` (`[batch, channel, ny,
/// nx]` on `grid`), in place and in parallel over fields; nothing changes if the grid has no
/// higher modes (`m ≥ min(nx, ny)/2`).
///
/// # Errors
/// [`PdeError::Shape`] if the fields are not on `grid`.
///
/// # Examples
/// ```
/// use fieldflow_pde::{Grid2d, filter::band_limit};
/// use ndarray::Array4;
/// let grid = Grid2d::square(16, 1.0).unwrap();
/// let wave = |m: f64, j: usize| (std::f64::consts::TAU * m * j as f64 / 16.0).cos();
/// // cos(2πx) + cos(2π·5x): the limit m = 3 keeps the first term only.
/// let mut a = Array4::from_shape_fn((1, 1, 16, 16), |(_, _, _, j)| wave(1.0, j) + wave(5.0, j));
/// band_limit(&grid, a.view_mut(), 3).unwrap();
/// let err = (0..16).map(|j| (a[[0, 0, 3, j]] - wave(1.0, j)).abs()).fold(0.0, f64::max);
/// assert!(err < 1e-14);
/// ```
pub fn band_limit(grid: &Grid2d, mut a: ArrayViewMut4<f64>, m: usize) -> Result<()> {
    let (b, c, ny, nx) = a.dim();
    grid.check_field("fields", &[ny, nx])?;
    if m >= nx.min(ny) / 2 {
        return Ok(());
    }
    let m = m as isize;
    let mut fields: Vec<ArrayViewMut2<f64>> = Vec::with_capacity(b * c);
    for sample in a.outer_iter_mut() {
        fields.extend(sample.into_outer_iter_mut());
    }
    fields.into_par_iter().try_for_each(|mut f| -> Result<()> {
        let mut spec = grid.spectral_zeros();
        grid.forward(f.view(), spec.view_mut())?;
        for ((i, j), z) in spec.indexed_iter_mut() {
            if signed_index(i, ny).abs() > m || j as isize > m {
                *z = Complex64::new(0.0, 0.0);
            }
        }
        grid.inverse_consuming(spec.view_mut(), f.view_mut())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::leray::leray_batch;
    use crate::residuals::divergence_residual;
    use crate::rng::stream;
    use ndarray::{Array4, Axis};
    use rand::RngExt;

    #[test]
    fn keeps_low_modes_exactly_and_removes_high_ones() {
        let grid = Grid2d::new(32, 16, 2.0, 1.0).unwrap();
        let x: Vec<f64> = (0..32).map(|j| j as f64 * 2.0 / 32.0).collect();
        let y: Vec<f64> = (0..16).map(|i| i as f64 / 16.0).collect();
        let tau = std::f64::consts::TAU;
        // Mode (2, 3) is kept by m = 3, mode (4, 1) and (1, 5) are not.
        let low = |i: usize, j: usize| (tau * 2.0 * x[j] / 2.0 + tau * 3.0 * y[i]).sin();
        let high = |i: usize, j: usize| {
            (tau * 4.0 * x[j] / 2.0 + tau * y[i]).cos() + (tau * x[j] / 2.0 + tau * 5.0 * y[i]).sin()
        };
        let mut a = Array4::from_shape_fn((2, 1, 16, 32), |(_, _, i, j)| low(i, j) + high(i, j));
        band_limit(&grid, a.view_mut(), 3).unwrap();
        let err = a.indexed_iter().map(|((_, _, i, j), v)| (v - low(i, j)).abs()).fold(0.0, f64::max);
        assert!(err < 1e-13, "{err:e}");
        // Idempotent, and a no-op at or above the grid's Nyquist limit.
        let before = a.clone();
        band_limit(&grid, a.view_mut(), 3).unwrap();
        band_limit(&grid, a.view_mut(), 8).unwrap();
        let diff = (&a - &before).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(diff < 1e-14, "{diff:e}");
    }

    #[test]
    fn divergence_free_fields_stay_divergence_free() {
        let grid = Grid2d::square(32, 1.0).unwrap();
        let mut rng = stream(7, 0);
        let mut a = Array4::from_shape_simple_fn((1, 2, 32, 32), || rng.random::<f64>() - 0.5);
        leray_batch(&grid, a.view_mut()).unwrap();
        band_limit(&grid, a.view_mut(), 5).unwrap();
        let r = divergence_residual(&grid, a.index_axis(Axis(0), 0)).unwrap();
        assert!(r.relative < 1e-13, "{:e}", r.relative);
    }

    #[test]
    fn fields_off_the_grid_are_an_error() {
        let grid = Grid2d::square(16, 1.0).unwrap();
        let mut a = Array4::<f64>::zeros((1, 1, 8, 16));
        assert!(band_limit(&grid, a.view_mut(), 2).is_err());
    }
}
