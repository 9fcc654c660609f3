//! Per-channel normalisation statistics, accumulated while streaming.
//!
//! Each sample is reduced with two passes (mean, then `M2 = Σ (x - mean)²`), and samples are
//! combined in order with Chan et al.'s pairwise update:
//! `δ = m_b - m_a`, `n = n_a + n_b`, `m = m_a + δ n_b / n`, `M2 = M2_a + M2_b + δ² n_a n_b / n`,
//! which is as stable as a two-pass computation over the whole data and never holds it in memory.
//! Because the merge goes sample by sample, the result does not depend on how the samples were
//! batched: a file merged from shards stores the same bits as an unsharded run.
//! The standard deviation is the population one (`ddof = 0`, numpy's default): `sqrt(M2 / n)`.
//!
//! Stored in native files as `/stats/<name>_mean`, `_std`, `_min`, `_max` (each `(C,)` float64)
//! and the attribute `/stats/@<name>_count`, for `<name>` in `fields`, `coefficients`,
//! `trajectories`.

use std::path::Path;

use hdf5::File;
use ndarray::{ArrayView, Axis, RemoveAxis};

use crate::error::{DatasetError, Result};
use crate::h5;

/// Mean, standard deviation and range of each channel over all samples and grid points.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Number of values per channel (samples x grid points [x time steps]).
    pub count: u64,
    /// Per-channel mean.
    pub mean: Vec<f64>,
    /// Per-channel population standard deviation.
    pub std: Vec<f64>,
    /// Per-channel minimum.
    pub min: Vec<f64>,
    /// Per-channel maximum.
    pub max: Vec<f64>,
}

/// Streaming accumulator of per-channel [`Stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStats {
    count: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl RunningStats {
    /// An empty accumulator for `channels` channels.
    #[must_use]
    pub fn new(channels: usize) -> Self {
        Self {
            count: 0,
            mean: vec![0.0; channels],
            m2: vec![0.0; channels],
            min: vec![f64::INFINITY; channels],
            max: vec![f64::NEG_INFINITY; channels],
        }
    }

    /// Number of channels.
    #[must_use]
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Number of values seen per channel.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a batch whose channels lie along `channel_axis` (1 for `(B, C, ny, nx)`, 2 for
    /// `(B, T, C, ny, nx)`).
    ///
    /// # Panics
    ///
    /// If `channel_axis` is out of bounds or the batch's channel count differs from
    /// [`channels`](Self::channels) (a programming error: callers check shapes first).
    pub fn update<D: RemoveAxis>(&mut self, batch: ArrayView<'_, f64, D>, channel_axis: usize) {
        assert_eq!(batch.shape()[channel_axis], self.channels(), "channel count mismatch");
        assert!(channel_axis > 0, "axis 0 is the sample axis");
        // Merge sample by sample, so that the result depends on the samples and their order only,
        // not on how they were split into batches (a merged file equals an unsharded one).
        let batch = batch.into_dyn();
        for sample in batch.axis_iter(Axis(0)) {
            let n_b = sample.len() / self.channels().max(1);
            if n_b == 0 {
                continue;
            }
            let mut other = Self::new(self.channels());
            other.count = n_b as u64;
            for (c, lane) in sample.axis_iter(Axis(channel_axis - 1)).enumerate() {
                let mean = lane.sum() / n_b as f64;
                let (mut m2, mut lo, mut hi) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
                for &v in &lane {
                    m2 += (v - mean) * (v - mean);
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                other.mean[c] = mean;
                other.m2[c] = m2;
                other.min[c] = lo;
                other.max[c] = hi;
            }
            self.merge(&other);
        }
    }

    /// Combines another accumulator into this one (Chan et al.); the result is the statistics of
    /// the union of both data sets.
    ///
    /// # Panics
    ///
    /// If the channel counts differ.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(self.channels(), other.channels(), "channel count mismatch");
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        for c in 0..self.channels() {
            let delta = other.mean[c] - self.mean[c];
            self.mean[c] += delta * nb / n;
            self.m2[c] += other.m2[c] + delta * delta * na * nb / n;
            self.min[c] = self.min[c].min(other.min[c]);
            self.max[c] = self.max[c].max(other.max[c]);
        }
        self.count += other.count;
    }

    /// The statistics so far (zeros and NaN ranges when empty).
    #[must_use]
    pub fn stats(&self) -> Stats {
        let n = self.count as f64;
        let empty = self.count == 0;
        Stats {
            count: self.count,
            mean: self.mean.clone(),
            std: self.m2.iter().map(|m2| if empty { 0.0 } else { (m2 / n).sqrt() }).collect(),
            min: self.min.iter().map(|&v| if empty { f64::NAN } else { v }).collect(),
            max: self.max.iter().map(|&v| if empty { f64::NAN } else { v }).collect(),
        }
    }
}

impl Stats {
    /// Writes the statistics under `/stats` with the given name prefix.
    pub(crate) fn write(&self, file: &File, path: &Path, name: &str) -> Result<()> {
        let group = if h5::exists(file, "stats") { file.group("stats") } else { file.create_group("stats") }
            .map_err(|e| DatasetError::hdf5(path, "/stats", e))?;
        for (suffix, values) in [("mean", &self.mean), ("std", &self.std), ("min", &self.min), ("max", &self.max)] {
            h5::write_f64_dataset(&group, path, &format!("{name}_{suffix}"), values)?;
        }
        h5::write_attr_scalar(&group, path, &format!("{name}_count"), self.count)
    }

    /// Reads the statistics stored under `/stats` with the given prefix; `Ok(None)` if the file
    /// has none (e.g. written by another program), an error if they do not have `channels`
    /// entries.
    pub(crate) fn read(file: &File, path: &Path, name: &str, channels: usize) -> Result<Option<Self>> {
        if !h5::exists(file, &format!("stats/{name}_mean")) {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(4);
        for suffix in ["mean", "std", "min", "max"] {
            let ds_name = format!("stats/{name}_{suffix}");
            let values = h5::read_f64_flat(file, path, &ds_name)?;
            if values.len() != channels {
                return Err(DatasetError::shape(path, h5::abs(&ds_name), format!("({channels},)"), &[values.len()]));
            }
            parts.push(values);
        }
        let group = file.group("stats").map_err(|e| DatasetError::hdf5(path, "/stats", e))?;
        let count = h5::read_attr_u64(&group, path, &format!("{name}_count"))?.unwrap_or(0);
        let mut it = parts.into_iter();
        let mut next = || it.next().unwrap_or_default();
        Ok(Some(Self { count, mean: next(), std: next(), min: next(), max: next() }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn two_pass(data: &[f64]) -> (f64, f64) {
        let n = data.len() as f64;
        let mean = data.iter().sum::<f64>() / n;
        let var = data.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn batched_updates_match_two_pass_with_large_offset() {
        // A large offset defeats the naive sum-of-squares formula; Chan's update must not care.
        let data = Array4::from_shape_fn((7, 2, 3, 5), |(n, c, y, x)| {
            1e8 * (c as f64 + 1.0) + ((n * 31 + y * 7 + x * 3) % 11) as f64 * 0.25
        });
        let mut running = RunningStats::new(2);
        for (start, end) in [(0, 1), (1, 4), (4, 4), (4, 7)] {
            running.update(data.slice(ndarray::s![start..end, .., .., ..]), 1);
        }
        let stats = running.stats();
        assert_eq!(stats.count, 7 * 15);
        for c in 0..2 {
            let lane: Vec<f64> = data.index_axis(Axis(1), c).iter().copied().collect();
            let (mean, std) = two_pass(&lane);
            assert!((stats.mean[c] - mean).abs() <= 1e-15 * mean.abs() * 8.0, "{} vs {mean}", stats.mean[c]);
            assert!((stats.std[c] - std).abs() <= 1e-9 * std, "{} vs {std}", stats.std[c]);
            assert_eq!(stats.min[c], lane.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(stats.max[c], lane.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        }
    }

    #[test]
    fn merge_is_order_independent() {
        let a = Array4::from_shape_fn((3, 1, 2, 2), |(n, _, y, x)| (n + 2 * y + x) as f64);
        let b = Array4::from_shape_fn((5, 1, 2, 2), |(n, _, y, x)| -((n * y + x) as f64) * 0.5);
        let (mut ab, mut ba) = (RunningStats::new(1), RunningStats::new(1));
        let (mut sa, mut sb) = (RunningStats::new(1), RunningStats::new(1));
        sa.update(a.view(), 1);
        sb.update(b.view(), 1);
        ab.merge(&sa);
        ab.merge(&sb);
        ba.merge(&sb);
        ba.merge(&sa);
        let (x, y) = (ab.stats(), ba.stats());
        assert_eq!(x.count, y.count);
        assert!((x.mean[0] - y.mean[0]).abs() < 1e-14);
        assert!((x.std[0] - y.std[0]).abs() < 1e-14);
    }

    #[test]
    fn empty_stats_are_zero_with_nan_range() {
        let s = RunningStats::new(2).stats();
        assert_eq!(s.count, 0);
        assert_eq!(s.mean, vec![0.0, 0.0]);
        assert!(s.min[0].is_nan() && s.max[1].is_nan());
    }
}
