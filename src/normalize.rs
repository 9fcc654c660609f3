//! Per-channel standardisation of fields, `x̃ = (x − μ_c − M_c) / s_c`, the units a network
//! learns in (training computes the statistics, see the `train::data` module); samplers map
//! generated fields back with [`ChannelStats::denormalize`].
//!
//! `M_c(x, y)` is an optional *mean field*: the training set's pointwise mean of channel `c`
//! minus its channel mean `μ_c` (zero when there is none). A flow whose statistics are not
//! translation invariant, such as Kolmogorov flow with its forced mean profile `∝ sin(4y)`, has
//! one; a translation-equivariant network (an FNO) fed a stationary source cannot produce it,
//! because equivariant maps of a translation-invariant law give translation-invariant laws.
//! Subtracting it leaves the network the fluctuations, which are close to stationary, and
//! adds it back exactly when sampling. `s_c` is then the standard deviation of the
//! fluctuations.
//!
//! The mean field is stored on the grid it was computed on; on another grid it is the spectral
//! interpolation (Fourier zero-padding on a finer grid, truncation on a coarser one:
//! [`fieldflow_pde::resample::resample`]), so it adds no mode the training grid does not resolve.
//! A pointwise mean of divergence-free fields is divergence-free, and so is its interpolation:
//! the constraint of velocity data holds in both units.

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_datasets::Stats;
use fieldflow_pde::resample::resample;
use ndarray::{Array3, Array4, ArrayView4, Axis, s};
use serde::{Deserialize, Serialize};

/// A normalisation that cannot be used on a grid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("normalisation: {0}")]
pub struct NormalizationError(pub String);

/// The pointwise mean field `M_c(x, y)` of a normalisation, on the `ny × nx` grid it was
/// computed on (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanField {
    /// Rows of the grid.
    pub ny: usize,
    /// Columns of the grid.
    pub nx: usize,
    /// `[C, ny, nx]` values in row-major order, in data units, each channel of zero mean.
    pub values: Vec<f64>,
}

impl MeanField {
    /// The field as a `[C, ny, nx]` array.
    ///
    /// # Errors
    /// [`NormalizationError`] if the values are not `C · ny · nx` finite numbers.
    pub fn array(&self, channels: usize) -> Result<Array3<f64>, NormalizationError> {
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err(NormalizationError("the mean field holds a non-finite value".into()));
        }
        Array3::from_shape_vec((channels, self.ny, self.nx), self.values.clone()).map_err(|_| {
            NormalizationError(format!(
                "the mean field holds {} values, not {channels} channels × {} × {}",
                self.values.len(),
                self.ny,
                self.nx
            ))
        })
    }
}

/// Per-channel mean and standard deviation, with an optional pointwise mean field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f64>,
    /// Population standard deviation of each channel (of the fluctuations about the mean
    /// field when there is one).
    pub std: Vec<f64>,
    /// The pointwise mean field `M_c`, when the normalisation subtracts one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<MeanField>,
}

impl ChannelStats {
    /// Channel means and standard deviations, without a mean field.
    pub fn new(mean: Vec<f64>, std: Vec<f64>) -> Self {
        Self { mean, std, field: None }
    }

    /// The mean and standard deviation of stored [`Stats`].
    pub fn from_stats(stats: &Stats) -> Self {
        Self::new(stats.mean.clone(), stats.std.clone())
    }

    /// Computes the statistics of `a` (`[N, C, H, W]`) over samples and grid points.
    pub fn compute(a: ArrayView4<f64>) -> Self {
        let (mean, std) = a
            .axis_iter(Axis(1))
            .map(|c| {
                let n = c.len().max(1) as f64;
                let m = c.sum() / n;
                (m, (c.fold(0.0, |s, v| s + (v - m) * (v - m)) / n).sqrt())
            })
            .unzip();
        Self::new(mean, std)
    }

    /// Computes the statistics of `a` (`[N, C, H, W]`, `N ≥ 1`) with its pointwise mean field:
    /// `μ_c` the channel mean, `M_c` the mean over samples minus `μ_c`, `s_c` the standard
    /// deviation of `x − μ_c − M_c`.
    pub fn compute_with_field(a: ArrayView4<f64>) -> Self {
        let (n, c, h, w) = a.dim();
        let pointwise = a.mean_axis(Axis(0)).unwrap_or_else(|| Array3::zeros((c, h, w)));
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        let mut field = pointwise.clone();
        for (ch, mut f) in field.axis_iter_mut(Axis(0)).enumerate() {
            let m = f.mean().unwrap_or(0.0);
            f.mapv_inplace(|v| v - m);
            let p = pointwise.index_axis(Axis(0), ch);
            let samples = a.index_axis(Axis(1), ch);
            let ss = samples
                .axis_iter(Axis(0))
                .map(|s| s.iter().zip(p.iter()).map(|(x, q)| (x - q) * (x - q)).sum::<f64>())
                .sum::<f64>();
            mean.push(m);
            std.push((ss / (n * h * w).max(1) as f64).sqrt());
        }
        let values = field.iter().copied().collect();
        Self { mean, std, field: Some(MeanField { ny: h, nx: w, values }) }
    }

    /// Checks that the statistics describe `channels` channels: one finite mean and one finite,
    /// positive standard deviation each, and a mean field (if any) of `channels` finite planes.
    /// Training stores 1 for a constant channel ([`ChannelStats::positive_scales`]), so a zero
    /// here is a damaged or hand-edited normalisation, which would scale every field wrongly.
    ///
    /// # Errors
    /// [`NormalizationError`] naming the first offending entry.
    pub fn validate(&self, channels: usize) -> Result<(), NormalizationError> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(NormalizationError(format!(
                "has {} mean(s) and {} standard deviation(s) for {channels} channel(s)",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(NormalizationError(format!("mean[{i}] = {} is not finite", self.mean[i])));
        }
        if let Some(i) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(NormalizationError(format!("std[{i}] = {} must be finite and positive", self.std[i])));
        }
        if let Some(f) = &self.field {
            f.array(channels)?;
        }
        Ok(())
    }

    /// Replaces a zero (or non-finite) standard deviation, a constant channel's, by the divisor 1
    /// that [`ChannelStats::scale`] uses for it, so the stored statistics say what is applied.
    pub fn positive_scales(&mut self) {
        for s in &mut self.std {
            if !(s.is_finite() && *s > 0.0) {
                *s = 1.0;
            }
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Gives `channels` one standard deviation, the root mean square of theirs (channels out of
    /// range are ignored; fewer than two change nothing).
    pub fn share_scale(&mut self, channels: &[usize]) {
        let stds: Vec<f64> = channels.iter().filter_map(|&c| self.std.get(c).copied()).collect();
        if stds.len() < 2 {
            return;
        }
        let shared = (stds.iter().map(|s| s * s).sum::<f64>() / stds.len() as f64).sqrt();
        for &c in channels {
            if let Some(s) = self.std.get_mut(c) {
                *s = shared;
            }
        }
    }

    /// The divisor of channel `c`: its standard deviation, or 1 when that is zero or not finite.
    pub fn scale(&self, c: usize) -> f64 {
        match self.std.get(c) {
            Some(&s) if s.is_finite() && s > 0.0 => s,
            _ => 1.0,
        }
    }

    /// The full mean `μ_c + M_c(x, y)` on an `h × w` grid, `[C, h, w]` (the mean field
    /// interpolated spectrally when it was computed on another grid).
    ///
    /// # Errors
    /// [`NormalizationError`] if the mean field is malformed or cannot be interpolated onto the
    /// grid (odd sizes).
    pub fn mean_on(&self, h: usize, w: usize) -> Result<Array3<f64>, NormalizationError> {
        let c = self.channels();
        let mut out = Array3::zeros((c, h, w));
        if let Some(f) = &self.field {
            let field = f.array(c)?;
            for ch in 0..c {
                let plane = field.index_axis(Axis(0), ch);
                let on = if (f.ny, f.nx) == (h, w) {
                    plane.to_owned()
                } else {
                    resample(plane, h, w).map_err(|e| {
                        NormalizationError(format!(
                            "the {}×{} mean field cannot be interpolated onto {h}×{w}: {e}",
                            f.ny, f.nx
                        ))
                    })?
                };
                out.slice_mut(s![ch, .., ..]).assign(&on);
            }
        }
        for (ch, mut plane) in out.axis_iter_mut(Axis(0)).enumerate() {
            let m = self.mean.get(ch).copied().unwrap_or(0.0);
            plane.mapv_inplace(|v| v + m);
        }
        Ok(out)
    }

    /// Standardises `a` (`[N, C, H, W]`) in place: `(x − μ_c − M_c) / s_c`.
    ///
    /// # Errors
    /// As [`ChannelStats::mean_on`].
    pub fn normalize(&self, a: &mut Array4<f64>) -> Result<(), NormalizationError> {
        let (_, _, h, w) = a.dim();
        let mean = self.mean_on(h, w)?;
        for (c, mut ch) in a.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (mean.index_axis(Axis(0), c), self.scale(c));
            for mut sample in ch.axis_iter_mut(Axis(0)) {
                sample.zip_mut_with(&m, |v, &m| *v = (*v - m) / s);
            }
        }
        Ok(())
    }

    /// Undoes [`ChannelStats::normalize`] in place: `μ_c + M_c + s_c x̃`.
    ///
    /// # Errors
    /// As [`ChannelStats::mean_on`].
    pub fn denormalize(&self, a: &mut Array4<f64>) -> Result<(), NormalizationError> {
        let (_, _, h, w) = a.dim();
        let mean = self.mean_on(h, w)?;
        for (c, mut ch) in a.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (mean.index_axis(Axis(0), c), self.scale(c));
            for mut sample in ch.axis_iter_mut(Axis(0)) {
                sample.zip_mut_with(&m, |v, &m| *v = m + s * *v);
            }
        }
        Ok(())
    }

    /// `(x − μ_c − M_c) / s_c` on a tensor.
    ///
    /// # Shapes
    /// - `t`: `[N, C, H, W]` with `C` the number of channels; output: the same
    ///
    /// # Errors
    /// As [`ChannelStats::mean_on`].
    pub fn normalize_tensor(&self, t: Tensor<4>) -> Result<Tensor<4>, NormalizationError> {
        let [_, _, h, w] = t.dims();
        let (mean, scale) = self.tensors(h, w, &t.device())?;
        Ok((t - mean).div(scale))
    }

    /// `μ_c + M_c + s_c x̃` on a tensor.
    ///
    /// # Shapes
    /// - `t`: `[N, C, H, W]` with `C` the number of channels; output: the same
    ///
    /// # Errors
    /// As [`ChannelStats::mean_on`].
    pub fn denormalize_tensor(&self, t: Tensor<4>) -> Result<Tensor<4>, NormalizationError> {
        let [_, _, h, w] = t.dims();
        let (mean, scale) = self.tensors(h, w, &t.device())?;
        Ok(t.mul(scale) + mean)
    }

    /// f32 tensors of the means on an `h × w` grid and of the scales: `[1, C, 1, 1]` means
    /// without a mean field, `[1, C, h, w]` with one; `[1, C, 1, 1]` scales.
    ///
    /// # Errors
    /// As [`ChannelStats::mean_on`].
    pub fn tensors(&self, h: usize, w: usize, device: &Device) -> Result<(Tensor<4>, Tensor<4>), NormalizationError> {
        let c = self.channels();
        let scale: Vec<f32> = (0..c).map(|i| self.scale(i) as f32).collect();
        let scale = Tensor::<4>::from_data(TensorData::new(scale, [1, c, 1, 1]), device);
        let mean = match self.field {
            None => {
                let mean: Vec<f32> = self.mean.iter().map(|&m| m as f32).collect();
                Tensor::<4>::from_data(TensorData::new(mean, [1, c, 1, 1]), device)
            }
            Some(_) => {
                let mean: Vec<f32> = self.mean_on(h, w)?.iter().map(|&m| m as f32).collect();
                Tensor::<4>::from_data(TensorData::new(mean, [1, c, h, w]), device)
            }
        };
        Ok((mean, scale))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::Grid2d;
    use std::f64::consts::TAU;

    /// Fields `A sin(4y) + fluctuation`: the mean field is the profile, the scale the
    /// fluctuation's standard deviation, and the round trip is exact.
    #[test]
    fn mean_field_is_the_pointwise_mean_and_round_trips() {
        let (n, h, w) = (64, 16, 16);
        let profile = |i: usize| 1.5 * (4.0 * TAU * i as f64 / h as f64).sin();
        // Fluctuations ±0.5 with alternating signs over samples: zero pointwise mean.
        let a = Array4::from_shape_fn((n, 2, h, w), |(k, c, i, j)| {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            let fluct = 0.5 * sign * (TAU * (j as f64 + k as f64) / w as f64).cos();
            if c == 0 { 3.0 + profile(i) + fluct } else { -1.0 + fluct }
        });
        let stats = ChannelStats::compute_with_field(a.view());
        assert!((stats.mean[0] - 3.0).abs() < 1e-12 && (stats.mean[1] + 1.0).abs() < 1e-12);
        let field = stats.field.as_ref().unwrap().array(2).unwrap();
        for i in 0..h {
            assert!((field[[0, i, 3]] - profile(i)).abs() < 1e-12);
            assert!(field[[1, i, 3]].abs() < 1e-12);
        }
        // std of 0.5 cos(·) is 0.5/√2 in both channels.
        for c in 0..2 {
            assert!((stats.std[c] - 0.5 / 2f64.sqrt()).abs() < 1e-12, "{}", stats.std[c]);
        }
        let mut b = a.clone();
        stats.normalize(&mut b).unwrap();
        let after = ChannelStats::compute_with_field(b.view());
        assert!(after.mean.iter().all(|m| m.abs() < 1e-12));
        assert!(after.field.unwrap().values.iter().all(|m| m.abs() < 1e-12));
        stats.denormalize(&mut b).unwrap();
        assert!(b.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        let device = Device::default();
        let t = crate::bridge::to_tensor::<4, _>(a.view(), &device);
        let back = stats.denormalize_tensor(stats.normalize_tensor(t).unwrap()).unwrap();
        let back = crate::bridge::to_array(back).unwrap();
        assert!(back.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-5 * (1.0 + y.abs())));
    }

    #[test]
    fn validation_names_the_offending_entry() {
        let good = ChannelStats::new(vec![0.1, -0.2], vec![1.5, 2.0]);
        assert!(good.validate(2).is_ok());
        let cases = [
            (ChannelStats::new(vec![0.1], vec![1.5, 2.0]), "1 mean(s) and 2 standard deviation(s)"),
            (ChannelStats::new(vec![0.1, f64::NAN], vec![1.5, 2.0]), "mean[1] = NaN"),
            (ChannelStats::new(vec![0.1, 0.2], vec![0.0, 0.0]), "std[0] = 0 must be finite and positive"),
            (ChannelStats::new(vec![0.1, 0.2], vec![1.0, f64::INFINITY]), "std[1] = inf"),
        ];
        for (stats, want) in cases {
            let err = stats.validate(2).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let mut constant = ChannelStats::compute(Array4::from_elem((2, 2, 4, 4), 3.0).view());
        assert!(constant.validate(2).is_err());
        constant.positive_scales();
        assert_eq!(constant.std, vec![1.0, 1.0]);
        assert!(constant.validate(2).is_ok());
    }

    /// On a finer grid the mean field is the interpolant of the profile (exact for a resolved
    /// mode), stays divergence-free, and odd grids are refused.
    #[test]
    fn mean_field_on_a_finer_grid_is_the_spectral_interpolant() {
        let (n, h) = (4, 16);
        let coarse = Grid2d::square(h, TAU).unwrap();
        let fine = Grid2d::square(2 * h, TAU).unwrap();
        // (u, v) = (∂ψ/∂y, −∂ψ/∂x) of ψ = sin(3y) sin(2x): divergence-free.
        let u = |x: f64, y: f64| 3.0 * (3.0 * y).cos() * (2.0 * x).sin();
        let v = |x: f64, y: f64| -2.0 * (3.0 * y).sin() * (2.0 * x).cos();
        let (uc, vc) = (coarse.field_from_fn(u), coarse.field_from_fn(v));
        let a = Array4::from_shape_fn((n, 2, h, h), |(_, c, i, j)| if c == 0 { uc[[i, j]] } else { vc[[i, j]] });
        let stats = ChannelStats::compute_with_field(a.view());
        let on = stats.mean_on(2 * h, 2 * h).unwrap();
        let (uf, vf) = (fine.field_from_fn(u), fine.field_from_fn(v));
        let err = on
            .index_axis(Axis(0), 0)
            .iter()
            .zip(uf.iter())
            .chain(on.index_axis(Axis(0), 1).iter().zip(vf.iter()))
            .fold(0.0_f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(err < 1e-12, "{err}");
        let div = fieldflow_pde::operators::divergence(&fine, on.view()).unwrap();
        let worst = div.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        assert!(worst < 1e-11, "{worst}");
        assert!(stats.mean_on(15, 16).is_err());
        let mut broken = stats.clone();
        broken.field.as_mut().unwrap().values.pop();
        assert!(broken.mean_on(h, h).unwrap_err().to_string().contains("values"));
    }
}
