//! Spectral resampling of periodic fields to another resolution.
//!
//! A field on `nx × ny` points is resampled to `mx × my` points of the same domain by Fourier
//! interpolation, one axis at a time (the operation is separable):
//! - refining (`m > n`) zero-pads the spectrum; the Nyquist mode `n/2`, which a real signal
//!   carries as `cos(π j)`, is split equally between `±n/2` so the interpolant is real;
//! - coarsening (`m < n`) truncates the spectrum; the new Nyquist mode receives the sum of the
//!   `±m/2` modes, exactly what point sampling would alias onto it.
//!
//! Trigonometric polynomials resolved by both grids are reproduced exactly, and refining then
//! coarsening back is the identity.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, Axis, Zip};
use num_complex::Complex64;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::error::{PdeError, Result};

/// Resamples a periodic `(ny, nx)` field to `(my, mx)` points (both even).
///
/// # Errors
/// [`PdeError::InvalidGrid`] if a target size is odd or zero, or a source size is odd.
///
/// ```
/// use fieldflow_pde::{Grid2d, resample::resample};
/// let coarse = Grid2d::square(16, 1.0).unwrap();
/// let fine = Grid2d::square(64, 1.0).unwrap();
/// let f = |x: f64, y: f64| (2.0 * std::f64::consts::PI * (3.0 * x - y)).sin();
/// let up = resample(coarse.field_from_fn(f).view(), 64, 64).unwrap();
/// assert!((&up - &fine.field_from_fn(f)).iter().all(|e| e.abs() < 1e-12));
/// ```
pub fn resample(field: ArrayView2<f64>, my: usize, mx: usize) -> Result<Array2<f64>> {
    let (ny, nx) = field.dim();
    for (name, n) in [("ny", ny), ("nx", nx), ("target ny", my), ("target nx", mx)] {
        if n < 2 || n % 2 != 0 {
            return Err(PdeError::InvalidGrid(format!("{name} = {n} must be even and at least 2")));
        }
    }
    let along_x = resample_rows(field, mx);
    let along_y = resample_rows(along_x.t(), my);
    Ok(along_y.reversed_axes().as_standard_layout().into_owned())
}

/// Resamples every row of `field` (a periodic signal along the last axis) to `m` points.
fn resample_rows(field: ArrayView2<f64>, m: usize) -> Array2<f64> {
    let n = field.ncols();
    if n == m {
        return field.to_owned();
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd: Arc<dyn RealToComplex<f64>> = planner.plan_fft_forward(n);
    let inv: Arc<dyn ComplexToReal<f64>> = planner.plan_fft_inverse(m);
    let mut out = Array2::zeros((field.nrows(), m));
    let mut line = vec![0.0; n];
    let mut spec = vec![Complex64::new(0.0, 0.0); n / 2 + 1];
    let mut target = vec![Complex64::new(0.0, 0.0); m / 2 + 1];
    // Forward unnormalised, inverse unnormalised: scale by 1/n once.
    let scale = 1.0 / n as f64;
    for (row, mut out_row) in field.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        Zip::from(&mut line[..]).and(&row).for_each(|l, &v| *l = v);
        // Lengths are right by construction; realfft only errors on wrong lengths.
        let _ = fwd.process(&mut line, &mut spec);
        target.iter_mut().for_each(|t| *t = Complex64::new(0.0, 0.0));
        let (nh, mh) = (n / 2, m / 2);
        if m > n {
            target[..nh].copy_from_slice(&spec[..nh]);
            target[nh] = Complex64::new(0.5 * spec[nh].re, 0.0);
        } else {
            target[..mh].copy_from_slice(&spec[..mh]);
            target[mh] = Complex64::new(2.0 * spec[mh].re, 0.0);
            if mh == 0 {
                target[0] = spec[0];
            }
        }
        target.iter_mut().for_each(|t| *t *= scale);
        target[0].im = 0.0;
        let mut res = vec![0.0; m];
        let _ = inv.process(&mut target, &mut res);
        out_row.assign(&ndarray::ArrayView1::from(&res[..]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::grid::Grid2d;
    use std::f64::consts::PI;

    fn trig(x: f64, y: f64) -> f64 {
        let t = 2.0 * PI;
        0.3 + (t * 3.0 * x).sin() * (t * 2.0 * y).cos() + 0.7 * (t * (x + 5.0 * y)).cos() - 0.2 * (t * 7.0 * x).cos()
    }

    #[test]
    fn resolved_trig_polynomials_are_reproduced_on_any_grid() {
        let src = Grid2d::new(16, 12, 1.0, 1.0).unwrap();
        let f = src.field_from_fn(trig);
        for (my, mx) in [(12, 16), (24, 40), (64, 18), (12, 64)] {
            let g = Grid2d::new(mx, my, 1.0, 1.0).unwrap();
            let r = resample(f.view(), my, mx).unwrap();
            let e = (&r - &g.field_from_fn(trig)).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(e < 1e-13, "({my},{mx}): {e}");
        }
        // Coarsening a fine field whose content is resolved on the coarse grid is exact too.
        let fine = Grid2d::new(64, 48, 1.0, 1.0).unwrap();
        let r = resample(fine.field_from_fn(trig).view(), 12, 16).unwrap();
        assert!((&r - &f).iter().all(|v| v.abs() < 1e-13));
    }

    #[test]
    fn refine_then_coarsen_is_identity_even_with_nyquist_content() {
        let f = Array2::from_shape_fn((8, 10), |(i, j)| ((i * 10 + j) as f64 * 1.37).sin());
        let up = resample(f.view(), 32, 30).unwrap();
        let back = resample(up.view(), 8, 10).unwrap();
        assert!((&back - &f).iter().all(|v| v.abs() < 1e-13));
        // Refining preserves the mean and the grid values at shared points.
        assert!((up.mean().unwrap() - f.mean().unwrap()).abs() < 1e-14);
    }

    #[test]
    fn coarsening_drops_unresolved_modes() {
        let fine = Grid2d::square(32, 1.0).unwrap();
        let f = fine.field_from_fn(|x, y| (2.0 * PI * x).sin() + (2.0 * PI * 10.0 * y).cos());
        let r = resample(f.view(), 8, 8).unwrap();
        let coarse = Grid2d::square(8, 1.0).unwrap();
        let expect = coarse.field_from_fn(|x, _| (2.0 * PI * x).sin());
        assert!((&r - &expect).iter().all(|v| v.abs() < 1e-13));
    }

    #[test]
    fn bad_sizes_are_errors() {
        let f = Array2::<f64>::zeros((8, 8));
        assert!(resample(f.view(), 7, 8).is_err());
        assert!(resample(f.view(), 8, 0).is_err());
        assert!(resample(Array2::<f64>::zeros((8, 9)).view(), 8, 8).is_err());
    }
}
