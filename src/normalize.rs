//! Per-channel standardisation of fields, `x̃ = (x − μ_c) / s_c`, the units a network learns in
//! (training computes the statistics, see the `train::data` module); samplers map generated
//! fields back with [`ChannelStats::denormalize`].

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_datasets::Stats;
use ndarray::{Array4, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f64>,
    /// Population standard deviation of each channel.
    pub std: Vec<f64>,
}

impl ChannelStats {
    /// The mean and standard deviation of stored [`Stats`].
    pub fn from_stats(stats: &Stats) -> Self {
        Self { mean: stats.mean.clone(), std: stats.std.clone() }
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
        Self { mean, std }
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

    /// Standardises `a` (`[N, C, H, W]`) in place: `(x − μ_c) / s_c`.
    pub fn normalize(&self, a: &mut Array4<f64>) {
        for (c, mut ch) in a.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (self.mean.get(c).copied().unwrap_or(0.0), self.scale(c));
            ch.mapv_inplace(|v| (v - m) / s);
        }
    }

    /// Undoes [`ChannelStats::normalize`] in place: `μ_c + s_c x̃`.
    pub fn denormalize(&self, a: &mut Array4<f64>) {
        for (c, mut ch) in a.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (self.mean.get(c).copied().unwrap_or(0.0), self.scale(c));
            ch.mapv_inplace(|v| m + s * v);
        }
    }

    /// `(x − μ_c) / s_c` on a tensor.
    ///
    /// # Shapes
    /// - `t`: `[N, C, H, W]` with `C` the number of channels; output: the same
    pub fn normalize_tensor(&self, t: Tensor<4>) -> Tensor<4> {
        let (mean, scale) = self.tensors(&t.device());
        (t - mean).div(scale)
    }

    /// `μ_c + s_c x̃` on a tensor.
    ///
    /// # Shapes
    /// - `t`: `[N, C, H, W]` with `C` the number of channels; output: the same
    pub fn denormalize_tensor(&self, t: Tensor<4>) -> Tensor<4> {
        let (mean, scale) = self.tensors(&t.device());
        t.mul(scale) + mean
    }

    /// `[1, C, 1, 1]` f32 tensors of the means and scales.
    pub fn tensors(&self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let c = self.channels();
        let mean: Vec<f32> = self.mean.iter().map(|&m| m as f32).collect();
        let scale: Vec<f32> = (0..c).map(|i| self.scale(i) as f32).collect();
        let make = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, c, 1, 1]), device);
        (make(mean), make(scale))
    }
}
