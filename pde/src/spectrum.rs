//! Shell-averaged energy spectra, kinetic energy and enstrophy.
//!
//! For a velocity field `u` on an `nx × ny` grid, `E(k)` sums `½ |û(k)|² / (nx ny)²` over the
//! modes whose wavenumber magnitude rounds to the shell `k = n Δk` (`Δk = 2π / max(Lx, Ly)`),
//! counting both halves of the real-FFT spectrum. With this normalisation Parseval's identity reads
//! `Σ_k E(k) = ½ ⟨|u|²⟩` (the mean kinetic energy), exactly.
//! Enstrophy is `Z = ½ ⟨ω²⟩`.

use ndarray::{ArrayView2, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

use crate::error::{PdeError, Result, ensure_shape};
use crate::grid::{Grid2d, recycle_spectrum};
use crate::operators::{check_velocity, vorticity};

/// A shell-averaged spectrum: `energy[n]` is the content of the shell at wavenumber `k[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// Shell wavenumbers `n Δk`, starting at 0.
    pub k: Vec<f64>,
    /// Energy per shell; sums to the mean of `½ Σ_c f_c²` over the grid.
    pub energy: Vec<f64>,
}

impl Spectrum {
    /// Total energy (the sum over shells).
    pub fn total(&self) -> f64 {
        self.energy.iter().sum()
    }
}

fn shell_width(grid: &Grid2d) -> f64 {
    2.0 * std::f64::consts::PI / grid.lx().max(grid.ly())
}

fn shell_count(grid: &Grid2d) -> usize {
    let kmax = grid.kx()[grid.nx() / 2].hypot(grid.ky()[grid.ny() / 2].abs());
    (kmax / shell_width(grid)).round() as usize + 1
}

/// Spectrum of a multi-channel field `(C, ny, nx)`: `½ Σ_c |f̂_c|²` binned into shells.
///
/// # Errors
/// [`PdeError::Shape`] if the trailing dimensions are not `(ny, nx)`.
pub fn power_spectrum(grid: &Grid2d, fields: ArrayView3<f64>) -> Result<Spectrum> {
    let c = fields.shape()[0];
    ensure_shape("fields", &[c, grid.ny(), grid.nx()], fields.shape())?;
    let dk = shell_width(grid);
    let mut energy = vec![0.0; shell_count(grid)];
    let norm = 0.5 / ((grid.nx() * grid.ny()) as f64).powi(2);
    let mut spec = grid.pooled_spectrum();
    for f in fields.outer_iter() {
        grid.forward(f, spec.view_mut())?;
        for ((i, j), v) in spec.indexed_iter() {
            let weight = if j == 0 || j == grid.nx() / 2 { 1.0 } else { 2.0 };
            let shell = (grid.kx()[j].hypot(grid.ky()[i]) / dk).round() as usize;
            energy[shell] += weight * norm * v.norm_sqr();
        }
    }
    recycle_spectrum(spec);
    let k = (0..energy.len()).map(|n| n as f64 * dk).collect();
    Ok(Spectrum { k, energy })
}

/// Kinetic-energy spectrum `E(k)` of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn energy_spectrum(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Spectrum> {
    check_velocity(grid, "velocity", uv.shape())?;
    power_spectrum(grid, uv)
}

/// Mean spectrum over a batch `[batch, C, ny, nx]` (computed in parallel).
///
/// # Errors
/// [`PdeError::Shape`] on a shape mismatch, [`PdeError::Parameter`] for an empty batch.
pub fn mean_power_spectrum(grid: &Grid2d, batch: ArrayView4<f64>) -> Result<Spectrum> {
    let n = batch.shape()[0];
    if n == 0 {
        return Err(PdeError::Parameter { name: "batch", value: 0.0, reason: "needs at least one sample" });
    }
    let spectra: Vec<Spectrum> =
        batch.axis_iter(Axis(0)).into_par_iter().map(|f| power_spectrum(grid, f)).collect::<Result<_>>()?;
    let mut mean = spectra[0].clone();
    for s in &spectra[1..] {
        mean.energy.iter_mut().zip(&s.energy).for_each(|(m, e)| *m += e);
    }
    mean.energy.iter_mut().for_each(|m| *m /= n as f64);
    Ok(mean)
}

impl Spectrum {
    /// The shells up to the grid's Nyquist wavenumber `min(k_x, k_y)` at the Nyquist index:
    /// shells past it hold only the corners of the square of modes, so they are partly resolved.
    #[must_use]
    pub fn resolved(mut self, grid: &Grid2d) -> Self {
        let nyquist = grid.kx()[grid.nx() / 2].min(grid.ky()[grid.ny() / 2].abs()) * (1.0 + 1e-9);
        let keep = self.k.iter().take_while(|k| **k <= nyquist).count();
        self.k.truncate(keep);
        self.energy.truncate(keep);
        self
    }
}

/// The running mean of per-sample power spectra ([`power_spectrum`]) over batches of fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeanSpectrum {
    sum: Option<Spectrum>,
    samples: usize,
}

impl MeanSpectrum {
    /// Adds the samples of a batch `[n, C, ny, nx]` (an empty batch adds nothing).
    ///
    /// # Errors
    /// [`PdeError::Shape`] if the fields are not on `grid`, or not on the grid of earlier batches.
    pub fn add(&mut self, grid: &Grid2d, batch: ArrayView4<f64>) -> Result<()> {
        let n = batch.shape()[0];
        if n == 0 {
            return Ok(());
        }
        let mean = mean_power_spectrum(grid, batch)?;
        match &mut self.sum {
            None => self.sum = Some(Spectrum { k: mean.k, energy: mean.energy.iter().map(|e| e * n as f64).collect() }),
            Some(sum) => {
                ensure_shape("batch spectrum", &[sum.k.len()], &[mean.k.len()])?;
                sum.energy.iter_mut().zip(&mean.energy).for_each(|(s, e)| *s += e * n as f64);
            }
        }
        self.samples += n;
        Ok(())
    }

    /// Samples added so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The mean spectrum of the samples added; `None` before the first.
    pub fn mean(&self) -> Option<Spectrum> {
        let sum = self.sum.as_ref()?;
        let n = self.samples.max(1) as f64;
        Some(Spectrum { k: sum.k.clone(), energy: sum.energy.iter().map(|e| e / n).collect() })
    }
}

/// Mean kinetic energy `½ ⟨u² + v²⟩`.
///
/// # Errors
/// [`PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn kinetic_energy(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<f64> {
    check_velocity(grid, "velocity", uv.shape())?;
    Ok(0.5 * uv.iter().map(|v| v * v).sum::<f64>() / (grid.nx() * grid.ny()) as f64)
}

/// Enstrophy `½ ⟨ω²⟩` of a vorticity field.
///
/// # Errors
/// [`PdeError::Shape`] if `w` is not `(ny, nx)`.
pub fn enstrophy_of_vorticity(grid: &Grid2d, w: ArrayView2<f64>) -> Result<f64> {
    grid.check_field("vorticity", w.shape())?;
    Ok(0.5 * w.iter().map(|v| v * v).sum::<f64>() / (grid.nx() * grid.ny()) as f64)
}

/// Enstrophy `½ ⟨ω²⟩` of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn enstrophy(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<f64> {
    let w = vorticity(grid, uv)?;
    enstrophy_of_vorticity(grid, w.view())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ndarray::{Array3, Array4, s};
    use std::f64::consts::PI;

    #[test]
    fn single_modes_land_in_their_shells_and_parseval_holds() {
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        // u = cos(3x), v = 2 sin(4y): energy ½·½·1 in shell 3 and ½·½·4 in shell 4.
        let mut uv = Array3::zeros((2, 32, 32));
        uv.slice_mut(s![0, .., ..]).assign(&g.field_from_fn(|x, _| (3.0 * x).cos()));
        uv.slice_mut(s![1, .., ..]).assign(&g.field_from_fn(|_, y| 2.0 * (4.0 * y).sin()));
        let e = energy_spectrum(&g, uv.view()).unwrap();
        assert!((e.energy[3] - 0.25).abs() < 1e-14);
        assert!((e.energy[4] - 1.0).abs() < 1e-14);
        assert!((e.total() - 1.25).abs() < 1e-14);
        assert!((e.k[4] - 4.0).abs() < 1e-14);
        assert!((kinetic_energy(&g, uv.view()).unwrap() - 1.25).abs() < 1e-14);
        // Enstrophy: ω = ∂v/∂x − ∂u/∂y = 0 here; take u = sin(2y) instead: ω = −2cos(2y), Z = 1.
        uv.slice_mut(s![0, .., ..]).assign(&g.field_from_fn(|_, y| (2.0 * y).sin()));
        uv.slice_mut(s![1, .., ..]).fill(0.0);
        assert!((enstrophy(&g, uv.view()).unwrap() - 1.0).abs() < 1e-13);
    }

    #[test]
    fn parseval_on_random_fields_rectangular_grid() {
        let g = Grid2d::new(40, 24, 2.0, 1.0).unwrap();
        let f = Array4::from_shape_fn((3, 2, 24, 40), |(b, c, i, j)| {
            (((b + 1) * (c + 2) * (i * 40 + j)) as f64 * 0.731).sin()
        });
        let mean = mean_power_spectrum(&g, f.view()).unwrap();
        let direct = 0.5 * f.iter().map(|v| v * v).sum::<f64>() / (3.0 * 40.0 * 24.0);
        assert!((mean.total() - direct).abs() < 1e-13 * direct);
        assert!(mean_power_spectrum(&g, Array4::zeros((0, 2, 24, 40)).view()).is_err());
    }
}
