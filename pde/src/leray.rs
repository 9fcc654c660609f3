//! Leray projection onto divergence-free fields and the Helmholtz decomposition.
//!
//! In Fourier space the Leray projector is `P(k) = I − k kᵀ / |k|²`, applied with the derivative
//! wavenumbers (Nyquist zeroed), so that the spectral divergence `i k·û` of the result is zero
//! mode by mode. Modes with `k = 0` (the mean flow) are left untouched. `P` is an orthogonal
//! projection: idempotent, self-adjoint, and it annihilates every gradient `∇φ`.
//!
//! The Helmholtz decomposition splits `u = P u + ∇φ` with
//! `φ̂ = −i (k·û) / |k|²` (same wavenumbers), so the two parts sum back to `u` exactly.

use ndarray::{Array2, Array3, ArrayView3, ArrayViewMut2, ArrayViewMut3, ArrayViewMut4, Axis, Zip, s};
use num_complex::Complex64;
use rayon::prelude::*;

use crate::error::{Result, ensure_shape};
use crate::grid::{Grid2d, recycle_spectrum};
use crate::operators::check_velocity;

/// Projects the spectra `(û, v̂)` of a velocity field in place: `û ← û − kx (k·û)/|k|²`, etc.
pub fn leray_spectral(grid: &Grid2d, mut su: ArrayViewMut2<Complex64>, mut sv: ArrayViewMut2<Complex64>) {
    let (kx, ky) = (grid.kx_deriv(), grid.ky_deriv());
    for (j, (mut cu, mut cv)) in su.columns_mut().into_iter().zip(sv.columns_mut()).enumerate() {
        let kxj = kx[j];
        Zip::from(&mut cu).and(&mut cv).and(ky).for_each(|u, v, &kyi| {
            let k2 = kxj * kxj + kyi * kyi;
            if k2 > 0.0 {
                let d = (*u * kxj + *v * kyi) / k2;
                *u -= d * kxj;
                *v -= d * kyi;
            }
        });
    }
}

/// Projects a `(2, ny, nx)` velocity field onto divergence-free fields, in place.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn leray_in_place(grid: &Grid2d, mut uv: ArrayViewMut3<f64>) -> Result<()> {
    check_velocity(grid, "velocity", uv.shape())?;
    let mut su = grid.pooled_spectrum();
    let mut sv = grid.pooled_spectrum();
    grid.forward(uv.slice(s![0, .., ..]), su.view_mut())?;
    grid.forward(uv.slice(s![1, .., ..]), sv.view_mut())?;
    leray_spectral(grid, su.view_mut(), sv.view_mut());
    grid.inverse_consuming(su.view_mut(), uv.slice_mut(s![0, .., ..]))?;
    grid.inverse_consuming(sv.view_mut(), uv.slice_mut(s![1, .., ..]))?;
    recycle_spectrum(su);
    recycle_spectrum(sv);
    Ok(())
}

/// The divergence-free part `P u` of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
///
/// ```
/// use fieldflow_pde::{Grid2d, leray::leray, operators::divergence};
/// let g = Grid2d::square(32, 1.0).unwrap();
/// let uv = ndarray::Array3::from_shape_fn((2, 32, 32), |(c, i, j)| ((c + 2 * i + 3 * j) as f64).sin());
/// let p = leray(&g, uv.view()).unwrap();
/// assert!(divergence(&g, p.view()).unwrap().iter().all(|d| d.abs() < 1e-10));
/// ```
pub fn leray(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Array3<f64>> {
    let mut out = uv.to_owned();
    leray_in_place(grid, out.view_mut())?;
    Ok(out)
}

/// Projects a batch `[batch, 2, ny, nx]` of velocity fields in place, one sample per rayon task.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `fields` is not `[batch, 2, ny, nx]`.
pub fn leray_batch(grid: &Grid2d, mut fields: ArrayViewMut4<f64>) -> Result<()> {
    let b = fields.shape()[0];
    ensure_shape("velocity batch", &[b, 2, grid.ny(), grid.nx()], fields.shape())?;
    fields.axis_iter_mut(Axis(0)).into_par_iter().try_for_each(|uv| leray_in_place(grid, uv))
}

/// The Helmholtz decomposition `u = solenoidal + irrotational`, `irrotational = ∇ potential`.
#[derive(Debug, Clone, PartialEq)]
pub struct Helmholtz {
    /// Divergence-free part `P u`, including the mean flow; `(2, ny, nx)`.
    pub solenoidal: Array3<f64>,
    /// Curl-free part `∇φ`; `(2, ny, nx)`.
    pub irrotational: Array3<f64>,
    /// The zero-mean potential `φ`; `(ny, nx)`.
    pub potential: Array2<f64>,
}

/// Splits a `(2, ny, nx)` velocity field into its divergence-free and gradient parts.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn helmholtz(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Helmholtz> {
    check_velocity(grid, "velocity", uv.shape())?;
    let su = grid.fft(uv.slice(s![0, .., ..]))?;
    let sv = grid.fft(uv.slice(s![1, .., ..]))?;
    let (kx, ky) = (grid.kx_deriv(), grid.ky_deriv());
    let mut phi = grid.spectral_zeros();
    let i = Complex64::new(0.0, 1.0);
    Zip::indexed(&mut phi).and(&su).and(&sv).for_each(|(r, c), p, &u, &v| {
        let k2 = kx[c] * kx[c] + ky[r] * ky[r];
        if k2 > 0.0 {
            *p = -i * (u * kx[c] + v * ky[r]) / k2;
        }
    });
    let mut gx = phi.clone();
    let mut gy = phi.clone();
    Zip::indexed(&mut gx).and(&mut gy).for_each(|(r, c), gx, gy| {
        *gx *= i * kx[c];
        *gy *= i * ky[r];
    });
    let mut irrotational = Array3::zeros((2, grid.ny(), grid.nx()));
    grid.inverse(gx.view(), irrotational.slice_mut(s![0, .., ..]))?;
    grid.inverse(gy.view(), irrotational.slice_mut(s![1, .., ..]))?;
    let solenoidal = &uv - &irrotational;
    let potential = grid.ifft(phi.view())?;
    Ok(Helmholtz { solenoidal, irrotational, potential })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::operators::{divergence, gradient, vorticity};
    use crate::rng::stream;
    use ndarray::Array4;
    use rand::RngExt;
    use std::f64::consts::PI;

    fn random_velocity(g: &Grid2d, seed: u64) -> Array3<f64> {
        let mut rng = stream(seed, 0);
        // White noise excites every mode, Nyquist included, so the full spectrum is tested.
        Array3::from_shape_fn((2, g.ny(), g.nx()), |_| rng.random::<f64>() - 0.5)
    }

    fn dot(a: &Array3<f64>, b: &Array3<f64>) -> f64 {
        Zip::from(a).and(b).fold(0.0, |s, x, y| s + x * y)
    }

    fn max_abs<'a>(a: impl IntoIterator<Item = &'a f64>) -> f64 {
        a.into_iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn leray_is_divergence_free_idempotent_and_kills_gradients() {
        for g in [Grid2d::square(64, 2.0 * PI).unwrap(), Grid2d::new(96, 48, 3.0, 1.0).unwrap()] {
            let uv = random_velocity(&g, 1);
            let p = leray(&g, uv.view()).unwrap();
            let kmax = g.kx().last().unwrap().hypot(g.ky()[g.ny() / 2]);
            let bound = 1e-12 * max_abs(&uv) * kmax;
            assert!(max_abs(&divergence(&g, p.view()).unwrap()) <= bound);
            let pp = leray(&g, p.view()).unwrap();
            assert!(max_abs(&(&pp - &p)) <= 1e-13 * max_abs(&p) * 10.0);
            // Orthogonal to gradients: P ∇φ = 0 and <P u, ∇φ> = 0.
            let phi = g.field_from_fn(|x, y| (x * 2.0 * PI / g.lx()).sin() * (3.0 * y * 2.0 * PI / g.ly()).cos());
            let grad = gradient(&g, phi.view()).unwrap();
            assert!(max_abs(&leray(&g, grad.view()).unwrap()) <= 1e-12 * max_abs(&grad));
            assert!(dot(&p, &grad).abs() <= 1e-12 * dot(&p, &p).sqrt() * dot(&grad, &grad).sqrt() * 64.0);
            // Self-adjoint: <P u, w> = <u, P w>.
            let w = random_velocity(&g, 2);
            let pw = leray(&g, w.view()).unwrap();
            assert!((dot(&p, &w) - dot(&uv, &pw)).abs() <= 1e-12 * dot(&uv, &uv).sqrt() * dot(&w, &w).sqrt());
            // The mean flow and the vorticity are untouched.
            for c in 0..2 {
                let m0 = uv.slice(s![c, .., ..]).mean().unwrap();
                let m1 = p.slice(s![c, .., ..]).mean().unwrap();
                assert!((m0 - m1).abs() < 1e-14);
            }
            let w0 = vorticity(&g, uv.view()).unwrap();
            let w1 = vorticity(&g, p.view()).unwrap();
            assert!(max_abs(&(&w0 - &w1)) <= 1e-12 * max_abs(&w0));
        }
    }

    #[test]
    fn helmholtz_parts_sum_back_and_have_their_properties() {
        let g = Grid2d::new(48, 64, 2.0, 1.0).unwrap();
        let uv = random_velocity(&g, 3);
        let h = helmholtz(&g, uv.view()).unwrap();
        assert!(max_abs(&(&h.solenoidal + &h.irrotational - &uv)) <= 1e-14);
        assert!(max_abs(&(&h.solenoidal - &leray(&g, uv.view()).unwrap())) <= 1e-13);
        let grad = gradient(&g, h.potential.view()).unwrap();
        assert!(max_abs(&(&grad - &h.irrotational)) <= 1e-12 * max_abs(&grad));
        assert!(max_abs(&vorticity(&g, h.irrotational.view()).unwrap()) <= 1e-11);
        assert!(dot(&h.solenoidal, &h.irrotational).abs() <= 1e-12 * dot(&uv, &uv));
    }

    #[test]
    fn batch_projection_matches_single() {
        let g = Grid2d::square(32, 1.0).unwrap();
        let mut batch = Array4::zeros((5, 2, 32, 32));
        for b in 0..5 {
            batch.slice_mut(s![b, .., .., ..]).assign(&random_velocity(&g, 10 + b as u64));
        }
        let single = leray(&g, batch.slice(s![3, .., .., ..])).unwrap();
        leray_batch(&g, batch.view_mut()).unwrap();
        assert!(max_abs(&(&batch.slice(s![3, .., .., ..]) - &single)) == 0.0);
        let bad = Array4::<f64>::zeros((2, 3, 32, 32));
        assert!(leray_batch(&g, bad.clone().view_mut()).is_err());
    }
}
