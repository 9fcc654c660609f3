//! Training data held in memory: a generic [`TensorDataset`] with optional conditioning, the
//! loader of native HDF5 files with per-channel normalisation, minibatch order, and toy data.
//!
//! # Normalisation
//!
//! Each channel `c` is standardised, `x̃ = (x − μ_c) / s_c`, with the mean and (population)
//! standard deviation stored in the file (`/stats`), or computed from the loaded samples when the
//! file has none; `s_c = 1` for a constant channel (`std = 0`). With
//! [`FieldDataOptions::mean_field`] the training fields' pointwise mean field `M_c(x, y)` is
//! subtracted too, `x̃ = (x − μ_c − M_c) / s_c` with `s_c` the fluctuations' standard deviation
//! (see [`crate::normalize`]). The [`Normalization`] is saved with every checkpoint so samplers
//! can map generated fields back, `x = μ_c + M_c + s_c x̃`.
//! Conditioning fields (the file's `/coefficients`) are standardised the same way with their own
//! statistics.
//!
//! # Minibatches
//!
//! Training visits the data in epochs: epoch `e` is a permutation of the samples drawn from
//! `substream(seed, e, SHUFFLE)` (Fisher–Yates), and position `p = s·B + b` of the run (step `s`,
//! slot `b`) takes sample `perm_{⌊p/N⌋}[p mod N]`. Every sample is seen once per epoch and the
//! batches of step `s` depend only on `(seed, s)`.

use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};
use fieldflow_datasets::FieldReader;
use fieldflow_pde::rng::{stream, substream};
use ndarray::{Array2, Array4, ArrayView, Dimension};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use fieldflow_pde::random::FittedSpectrum;

use super::loss::Conditioning;
use super::{TrainError, write_atomic};
use crate::bridge::to_tensor;
use crate::noise::NoiseConfig;
pub use crate::normalize::ChannelStats;

/// Purpose tag of the epoch permutations (`substream(seed, epoch, SHUFFLE)`).
pub const SHUFFLE: u64 = 0x5452_4e5f_5348_5546; // "TRN_SHUF"

/// Checks that `stats` has `channels` finite values of each kind.
pub(crate) fn check_stats(stats: &ChannelStats, channels: usize, what: &'static str) -> Result<(), TrainError> {
    if stats.mean.len() != channels || stats.std.len() != channels {
        return Err(TrainError::Shape { what, expected: vec![channels], got: vec![stats.mean.len(), stats.std.len()] });
    }
    if stats.mean.iter().chain(&stats.std).any(|v| !v.is_finite()) {
        return Err(TrainError::config("normalization", format!("{what} statistics must be finite")));
    }
    Ok(())
}

/// The normalisation of a data set's fields and conditioning fields; saved with checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Statistics of the fields (the flow's states).
    pub fields: ChannelStats,
    /// Statistics of the conditioning fields, when the model is conditioned on them.
    #[serde(default)]
    pub coefficients: Option<ChannelStats>,
}

impl Normalization {
    /// Writes the normalisation as JSON (atomically).
    ///
    /// # Errors
    /// [`TrainError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::checkpoint(path, e.to_string()))?;
        write_atomic(path, text.as_bytes())
    }

    /// Reads a normalisation written by [`Normalization::save`].
    ///
    /// # Errors
    /// [`TrainError::Io`] / [`TrainError::Checkpoint`] if the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::checkpoint(path, e.to_string()))
    }
}

/// The spectrum of a fitted source measure ([`NoiseConfig::fit`]) on the standardised training
/// fields of `train` (`[n, channels, ny, nx]` on `grid`); `None` for the other measures.
///
/// # Errors
/// [`TrainError::Noise`] if the fields do not suit the measure; [`TrainError::Readback`] if the
/// fields cannot be read back from their device.
pub fn fit_source(
    noise: &NoiseConfig,
    grid: &fieldflow_pde::Grid2d,
    train: &TensorDataset<4>,
) -> Result<Option<FittedSpectrum>, TrainError> {
    if !noise.kind.is_fitted() {
        return Ok(None);
    }
    let x = crate::bridge::to_array(train.x().clone())
        .and_then(|a| a.into_dimensionality::<ndarray::Ix4>().map_err(|e| e.to_string()))
        .map_err(|reason| TrainError::Readback { what: "the training fields", reason })?;
    Ok(noise.fit(grid, x.view())?)
}

/// Scans `a` for a NaN or infinite value; reports the first one with its sample (offset by
/// `first_sample`) and, for arrays of rank ≥ 2, its channel (axis 1).
///
/// # Errors
/// [`TrainError::NonFiniteData`] naming `what`.
pub fn check_finite<Dm: Dimension>(
    a: ArrayView<'_, f64, Dm>,
    what: &str,
    first_sample: usize,
) -> Result<(), TrainError> {
    if a.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let a = a.into_dyn();
    match a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(TrainError::NonFiniteData {
            what: what.to_string(),
            sample: first_sample + index[0],
            channel: (a.ndim() >= 2).then(|| index[1]),
            value,
        }),
        None => Ok(()),
    }
}

/// An in-memory data set of states `x` (`[N, ...]`, rank `D`) with optional conditioning,
/// sampled in per-epoch permutations (see the [module documentation](self)).
#[derive(Debug)]
pub struct TensorDataset<const D: usize> {
    x: Tensor<D>,
    cond: Option<Conditioning>,
    len: usize,
    order: Mutex<Option<(u64, u64, Vec<usize>)>>,
}

impl<const D: usize> Clone for TensorDataset<D> {
    fn clone(&self) -> Self {
        Self { x: self.x.clone(), cond: self.cond.clone(), len: self.len, order: Mutex::new(None) }
    }
}

impl<const D: usize> TensorDataset<D> {
    /// A data set of the samples `x` (axis 0), checked to be finite.
    ///
    /// # Errors
    /// [`TrainError::Config`] (`data`) for an empty set, [`TrainError::NonFiniteData`] for NaN or
    /// infinite values, [`TrainError::Readback`] if the check cannot read the values.
    pub fn new(x: Tensor<D>) -> Result<Self, TrainError> {
        let len = x.dims()[0];
        if len == 0 {
            return Err(TrainError::config("data", "holds no sample"));
        }
        tensor_finite(&x, "data")?;
        Ok(Self { x, cond: None, len, order: Mutex::new(None) })
    }

    /// A data set from an `f64` array (converted to `f32` tensors on `device`).
    ///
    /// # Errors
    /// As [`TensorDataset::new`]; non-finite values are reported with their sample and channel.
    pub fn from_array<Dm: Dimension>(a: ArrayView<'_, f64, Dm>, device: &Device) -> Result<Self, TrainError> {
        if a.ndim() != D {
            return Err(TrainError::Shape { what: "data rank", expected: vec![D], got: vec![a.ndim()] });
        }
        check_finite(a.view(), "data", 0)?;
        Self::new(to_tensor::<D, _>(a, device))
    }

    /// The same samples with conditioning (one entry per sample).
    ///
    /// # Errors
    /// [`TrainError::Shape`] if the conditioning's batch is not the number of samples,
    /// [`TrainError::NonFiniteData`] for NaN or infinite conditioning.
    pub fn with_conditioning(mut self, cond: Conditioning) -> Result<Self, TrainError> {
        if let Some(b) = cond.batch_size()
            && b != self.len
        {
            return Err(TrainError::Shape { what: "conditioning samples", expected: vec![self.len], got: vec![b] });
        }
        if let Some(f) = &cond.fields {
            tensor_finite(f, "conditioning fields")?;
        }
        if let Some(p) = &cond.params {
            tensor_finite(p, "conditioning parameters")?;
        }
        self.cond = (!cond.is_empty()).then_some(cond);
        Ok(self)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty (never: construction rejects empty sets).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All samples.
    pub fn x(&self) -> &Tensor<D> {
        &self.x
    }

    /// All conditioning.
    pub fn conditioning(&self) -> Option<&Conditioning> {
        self.cond.as_ref()
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> Vec<usize> {
        self.x.dims()[1..].to_vec()
    }

    /// The permutation of epoch `epoch` under `seed`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.len).collect();
        let mut rng = substream(seed, epoch, SHUFFLE);
        for i in (1..self.len).rev() {
            let j = rng.random_range(0..=i);
            perm.swap(i, j);
        }
        perm
    }

    /// The sample indices of step `step`'s minibatch of `batch_size`.
    pub fn batch_indices(&self, seed: u64, step: u64, batch_size: usize) -> Vec<usize> {
        let n = self.len as u64;
        let start = step.saturating_mul(batch_size as u64);
        let mut cache = self.order.lock().unwrap_or_else(|e| e.into_inner());
        (start..start + batch_size as u64)
            .map(|p| {
                let (epoch, offset) = (p / n, (p % n) as usize);
                match &*cache {
                    Some((s, e, perm)) if *s == seed && *e == epoch => perm[offset],
                    _ => {
                        let perm = self.epoch_order(seed, epoch);
                        let index = perm[offset];
                        *cache = Some((seed, epoch, perm));
                        index
                    }
                }
            })
            .collect()
    }

    /// The samples `indices` and their conditioning.
    ///
    /// # Shapes
    /// - output: `[indices.len(), ...]`
    pub fn batch(&self, indices: &[usize]) -> (Tensor<D>, Option<Conditioning>) {
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [indices.len()]), &self.x.device());
        let cond = self.cond.as_ref().map(|c| c.select(idx.clone()));
        (self.x.clone().select(0, idx), cond)
    }

    /// The consecutive samples `range` (clamped to the set) and their conditioning.
    pub fn slice(&self, range: Range<usize>) -> (Tensor<D>, Option<Conditioning>) {
        let (start, end) = (range.start.min(self.len), range.end.min(self.len));
        let n = end.saturating_sub(start);
        let cond = self.cond.as_ref().map(|c| Conditioning {
            fields: c.fields.as_ref().map(|f| f.clone().narrow(0, start, n)),
            params: c.params.as_ref().map(|p| p.clone().narrow(0, start, n)),
        });
        (self.x.clone().narrow(0, start, n), cond)
    }
}

fn tensor_finite<const D: usize>(x: &Tensor<D>, what: &'static str) -> Result<(), TrainError> {
    let all = x.clone().is_finite().all().try_into_scalar::<bool>();
    match all {
        Ok(true) => Ok(()),
        Ok(false) => {
            let values = crate::bridge::to_array(x.clone()).map_err(|reason| TrainError::Readback { what, reason })?;
            check_finite(values.view(), what, 0)
        }
        Err(e) => Err(TrainError::Readback { what, reason: format!("{e:?}") }),
    }
}

/// Which stored fields of a sample are training fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshots {
    /// The sample's field (`/fields`; for trajectory data the last snapshot).
    #[default]
    Last,
    /// Every snapshot of every trajectory (`/trajectories`), each as its own field, in the
    /// order sample-major, time-minor.
    All,
}

/// What [`load_field_dataset`] loads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldDataOptions {
    /// Which stored fields of each sample to load.
    pub snapshots: Snapshots,
    /// Load the file's `/coefficients` as conditioning fields.
    pub coefficients: bool,
    /// Use this normalisation (e.g. the training set's for a validation set) instead of the
    /// file's statistics.
    pub normalization: Option<Normalization>,
    /// Channels that share one scale (the root mean square of their standard deviations) when
    /// the normalisation comes from the file: the components of a vector field, so that
    /// normalising keeps its direction, and `∇·u = 0` holds in both units.
    pub shared_scale: Vec<usize>,
    /// Subtract the loaded fields' pointwise mean field (see [`crate::normalize`]) when the
    /// normalisation is computed here; the channel statistics are then those of the loaded
    /// fields (the file's stored ones do not describe the fluctuations).
    pub mean_field: bool,
}

/// Loads samples `range` of a native file into memory, normalised per channel (see the
/// [module documentation](self)), with the file's coefficients as conditioning if asked.
/// Returns the data set and the normalisation used.
///
/// # Errors
/// [`TrainError::Dataset`] for read errors (a range beyond the file, missing coefficients),
/// [`TrainError::NonFiniteData`] naming the dataset, file, sample and channel of a NaN or
/// infinite value, [`TrainError::Shape`] for statistics with the wrong number of channels.
pub fn load_field_dataset(
    reader: &FieldReader,
    range: Range<usize>,
    options: &FieldDataOptions,
    device: &Device,
) -> Result<(TensorDataset<4>, Normalization), TrainError> {
    let first = range.start;
    let path = reader.path().display().to_string();
    let (mut fields, dataset) = match options.snapshots {
        Snapshots::Last => (reader.read_range(range.clone())?, "/fields"),
        Snapshots::All => {
            if reader.trajectories_dtype().is_none() {
                return Err(TrainError::Config {
                    key: "data.snapshots",
                    reason: format!("= \"all\" needs trajectories, and {path} has no /trajectories"),
                });
            }
            if options.coefficients {
                return Err(TrainError::Config {
                    key: "data.snapshots",
                    reason: "= \"all\" cannot be combined with conditioning on coefficients".into(),
                });
            }
            let t = reader.read_trajectories_range(range.clone())?;
            let (n, steps, c, ny, nx) = t.dim();
            let flat = t
                .into_shape_with_order((n * steps, c, ny, nx))
                .map_err(|e| TrainError::Readback { what: "the trajectories", reason: e.to_string() })?;
            (flat, "/trajectories")
        }
    };
    check_finite(fields.view(), &format!("{dataset} of {path}"), first)?;
    let mut coefficients = match options.coefficients {
        true => {
            let c = reader.read_coefficients_range(range)?;
            check_finite(c.view(), &format!("/coefficients of {path}"), first)?;
            Some(c)
        }
        false => None,
    };
    let normalization = match &options.normalization {
        Some(n) => n.clone(),
        None => Normalization {
            fields: match options.snapshots {
                _ if options.mean_field => ChannelStats::compute_with_field(fields.view()),
                Snapshots::Last => {
                    reader.fields_stats().map_or_else(|| ChannelStats::compute(fields.view()), ChannelStats::from_stats)
                }
                Snapshots::All => ChannelStats::compute(fields.view()),
            },
            coefficients: coefficients.as_ref().map(|c| {
                reader.coefficients_stats().map_or_else(|| ChannelStats::compute(c.view()), ChannelStats::from_stats)
            }),
        },
    };
    let mut normalization = normalization;
    if options.normalization.is_none() {
        normalization.fields.share_scale(&options.shared_scale);
        normalization.fields.positive_scales();
        if let Some(c) = normalization.coefficients.as_mut() {
            c.positive_scales();
        }
    }
    let from_arrays = normalized_dataset(&mut fields, coefficients.as_mut(), &normalization, device)?;
    Ok((from_arrays, normalization))
}

/// Normalises `fields` (and `coefficients`) in place and builds the data set: the part of
/// [`load_field_dataset`] after reading, for arrays from any source.
///
/// # Errors
/// [`TrainError::NonFiniteData`] for NaN or infinite values (sample and channel named),
/// [`TrainError::Shape`] if the statistics do not have one entry per channel, or the
/// coefficients' samples or grid differ from the fields'.
pub fn normalized_dataset(
    fields: &mut Array4<f64>,
    coefficients: Option<&mut Array4<f64>>,
    normalization: &Normalization,
    device: &Device,
) -> Result<TensorDataset<4>, TrainError> {
    check_finite(fields.view(), "fields", 0)?;
    check_stats(&normalization.fields, fields.shape()[1], "field statistics (one per channel)")?;
    normalization.fields.normalize(fields).map_err(|e| TrainError::config("normalization", e.0))?;
    let mut data = TensorDataset::from_array(fields.view(), device)?;
    if let Some(c) = coefficients {
        check_finite(c.view(), "coefficients", 0)?;
        let (f, g) = (fields.shape(), c.shape());
        if f[0] != g[0] || f[2..] != g[2..] {
            return Err(TrainError::Shape {
                what: "coefficients (samples and grid of the fields)",
                expected: vec![f[0], g[1], f[2], f[3]],
                got: g.to_vec(),
            });
        }
        let stats = normalization.coefficients.as_ref().ok_or_else(|| {
            TrainError::config("normalization", "has no coefficient statistics but coefficients are loaded")
        })?;
        check_stats(stats, c.shape()[1], "coefficient statistics (one per channel)")?;
        stats.normalize(c).map_err(|e| TrainError::config("normalization", e.0))?;
        data = data.with_conditioning(Conditioning::new(Some(to_tensor::<4, _>(c.view(), device)), None))?;
    }
    Ok(data)
}

/// The "8 gaussians" toy distribution of FFJORD / torchcfm: an equal mixture of eight isotropic
/// Gaussians with standard deviation `0.5/√2 ≈ 0.354` centred at radius `4/√2 = 2√2 ≈ 2.83` on
/// the angles `kπ/4`. Sample `i` draws from `stream(seed, i)`.
///
/// # Shapes
/// - output: `[indices.len(), 2]`
pub fn eight_gaussians(seed: u64, indices: Range<u64>) -> Array2<f64> {
    let n = indices.end.saturating_sub(indices.start) as usize;
    let mut out = Array2::zeros((n, 2));
    let (radius, std) = (4.0 / std::f64::consts::SQRT_2, 0.5 / std::f64::consts::SQRT_2);
    for (mut row, i) in out.rows_mut().into_iter().zip(indices) {
        let mut rng = stream(seed, i);
        let k = rng.random_range(0..8_u32);
        let angle = f64::from(k) * std::f64::consts::FRAC_PI_4;
        let (zx, zy): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        row[0] = radius * angle.cos() + std * zx;
        row[1] = radius * angle.sin() + std * zy;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use fieldflow_datasets::{Dtype, FieldWriter, FileSpec, Grid, Metadata, WriterOptions};
    use ndarray::Axis;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.try_into_vec_as::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    #[test]
    fn epochs_are_permutations_and_batches_are_keyed_by_step() {
        let device = Device::default();
        let a = Array2::from_shape_fn((10, 1), |(i, _)| i as f64);
        let data = TensorDataset::<2>::from_array(a.view(), &device).unwrap();
        // Steps 0..5 of batch 4 cover epochs 0 and 1: each epoch is a permutation.
        let positions: Vec<usize> = (0..5).flat_map(|s| data.batch_indices(7, s, 4)).collect();
        let mut e0 = positions[..10].to_vec();
        e0.sort_unstable();
        assert_eq!(e0, (0..10).collect::<Vec<_>>());
        assert_eq!(positions[..10], data.epoch_order(7, 0)[..]);
        assert_eq!(positions[10..], data.epoch_order(7, 1)[..]);
        assert_ne!(data.epoch_order(7, 0), data.epoch_order(7, 1));
        assert_ne!(data.epoch_order(7, 0), data.epoch_order(8, 0));
        // A step's batch does not depend on what was asked before (the cache is transparent).
        let fresh = TensorDataset::<2>::from_array(a.view(), &device).unwrap();
        assert_eq!(fresh.batch_indices(7, 3, 4), data.batch_indices(7, 3, 4));
        let (x, cond) = data.batch(&[3, 9, 0]);
        assert_eq!(values(x), vec![3.0, 9.0, 0.0]);
        assert!(cond.is_none());
    }

    #[test]
    fn rejects_non_finite_data_naming_sample_and_channel() {
        let device = Device::default();
        let mut a = Array4::<f64>::zeros((4, 3, 2, 2));
        a[[2, 1, 0, 1]] = f64::NAN;
        match TensorDataset::<4>::from_array(a.view(), &device) {
            Err(TrainError::NonFiniteData { sample: 2, channel: Some(1), .. }) => {}
            other => panic!("{other:?}"),
        }
        let norm =
            Normalization { fields: ChannelStats::compute(Array4::zeros((1, 3, 2, 2)).view()), coefficients: None };
        let err = normalized_dataset(&mut a, None, &norm, &device).unwrap_err();
        assert!(err.to_string().contains("sample 2, channel 1"), "{err}");
        // Tensors are checked too.
        let t = Tensor::<2>::from_data(TensorData::new(vec![1.0_f32, f32::INFINITY, 0.0, 0.0], [2, 2]), &device);
        assert!(matches!(TensorDataset::new(t), Err(TrainError::NonFiniteData { sample: 0, channel: Some(1), .. })));
        assert!(TensorDataset::<2>::new(Tensor::zeros([0, 2], &device)).is_err());
    }

    #[test]
    fn normalisation_round_trips_and_standardises() {
        let a = Array4::from_shape_fn((3, 2, 4, 4), |(n, c, y, x)| (c as f64 + 1.0) * 10.0 + (n + y * x) as f64);
        let stats = ChannelStats::compute(a.view());
        let mut b = a.clone();
        stats.normalize(&mut b).unwrap();
        let after = ChannelStats::compute(b.view());
        for c in 0..2 {
            assert!(after.mean[c].abs() < 1e-12 && (after.std[c] - 1.0).abs() < 1e-12);
        }
        stats.denormalize(&mut b).unwrap();
        assert!(b.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        let device = Device::default();
        let t = to_tensor::<4, _>(a.view(), &device);
        let back = stats.denormalize_tensor(stats.normalize_tensor(t).unwrap()).unwrap();
        assert!(values(back).iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-4 * y.abs()));
        // A constant channel is centred, not divided by zero.
        let constant = ChannelStats::new(vec![2.0], vec![0.0]);
        let mut c = Array4::from_elem((1, 1, 2, 2), 2.0);
        constant.normalize(&mut c).unwrap();
        assert!(c.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn loads_a_native_file_with_its_statistics_and_coefficients() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.h5");
        let mut meta = Metadata::new("darcy", &["u"]);
        meta.coefficient_channels = vec!["a".to_string()];
        let spec = FileSpec::new(meta, Grid::periodic(4, 4, 1.0, 1.0), Dtype::F64);
        let mut w = FieldWriter::create(&path, spec, &WriterOptions::default()).unwrap();
        let u = Array4::from_shape_fn((6, 1, 4, 4), |(n, _, y, x)| 3.0 + (n * 16 + y * 4 + x) as f64 * 0.1);
        let a = Array4::from_shape_fn((6, 1, 4, 4), |(n, _, y, x)| 12.0 - (n + y + x) as f64);
        w.append(u.view(), Some(a.view())).unwrap();
        w.finish().unwrap();
        let reader = FieldReader::open(&path).unwrap();
        let device = Device::default();
        let options = FieldDataOptions { coefficients: true, ..FieldDataOptions::default() };
        let (train, norm) = load_field_dataset(&reader, 0..4, &options, &device).unwrap();
        assert_eq!(train.len(), 4);
        assert_eq!(norm.fields.mean, reader.fields_stats().unwrap().mean);
        let want = ChannelStats::compute(u.view());
        assert!((norm.fields.std[0] - want.std[0]).abs() < 1e-9);
        let (x, cond) = train.batch(&[1]);
        let got = values(x);
        for (g, v) in got.iter().zip(u.slice(ndarray::s![1, 0, .., ..]).iter()) {
            assert!((g - (v - want.mean[0]) / want.std[0]).abs() < 1e-5);
        }
        let coef = cond.unwrap().fields.unwrap();
        assert_eq!(coef.dims(), [1, 1, 4, 4]);
        // The validation part reuses the training normalisation.
        let val_options =
            FieldDataOptions { coefficients: true, normalization: Some(norm.clone()), ..FieldDataOptions::default() };
        let (val, norm2) = load_field_dataset(&reader, 4..6, &val_options, &device).unwrap();
        assert_eq!((val.len(), norm2), (2, norm.clone()));
        let saved = dir.path().join("normalization.json");
        norm.save(&saved).unwrap();
        assert_eq!(Normalization::load(&saved).unwrap(), norm);
        // Errors name what is wrong.
        assert!(matches!(load_field_dataset(&reader, 4..9, &options, &device), Err(TrainError::Dataset(_))));
    }

    #[test]
    fn every_snapshot_of_every_trajectory_is_a_field_in_sample_major_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.h5");
        let spec = FileSpec::new(Metadata::new("kolmogorov", &["u"]), Grid::periodic(4, 4, 1.0, 1.0), Dtype::F64)
            .with_time(vec![1.0, 2.0, 3.0]);
        let mut w = FieldWriter::create(&path, spec, &WriterOptions::default()).unwrap();
        // Snapshot t of trajectory n is the constant field 10 n + t.
        let traj = ndarray::Array5::from_shape_fn((4, 3, 1, 4, 4), |(n, t, ..)| (10 * n + t) as f64);
        w.append(traj.slice(ndarray::s![.., 2, .., .., ..]), None).unwrap();
        w.append_trajectories(traj.view()).unwrap();
        w.finish().unwrap();
        let reader = FieldReader::open(&path).unwrap();
        let device = Device::default();
        let options = FieldDataOptions { snapshots: Snapshots::All, ..FieldDataOptions::default() };
        let (train, norm) = load_field_dataset(&reader, 1..3, &options, &device).unwrap();
        assert_eq!(train.len(), 6);
        // The statistics are the snapshots' (10..=22 without 13..=19), not /fields'.
        let values_seen = [10.0, 11.0, 12.0, 20.0, 21.0, 22.0];
        let mean = values_seen.iter().sum::<f64>() / 6.0;
        assert!((norm.fields.mean[0] - mean).abs() < 1e-12);
        for (k, want) in values_seen.iter().enumerate() {
            let (x, _) = train.batch(&[k]);
            let got = values(x)[0];
            assert!((got * norm.fields.std[0] + norm.fields.mean[0] - want).abs() < 1e-4, "field {k}: {got}");
        }
        // The last-snapshot view is /fields.
        let (last, _) = load_field_dataset(&reader, 1..3, &FieldDataOptions::default(), &device).unwrap();
        assert_eq!(last.len(), 2);
        // Errors: no trajectories, or conditioning on coefficients.
        let flat = dir.path().join("f.h5");
        let spec = FileSpec::new(Metadata::new("kolmogorov", &["u"]), Grid::periodic(4, 4, 1.0, 1.0), Dtype::F64);
        let mut w = FieldWriter::create(&flat, spec, &WriterOptions::default()).unwrap();
        w.append(traj.slice(ndarray::s![.., 0, .., .., ..]), None).unwrap();
        w.finish().unwrap();
        let flat = FieldReader::open(&flat).unwrap();
        let err = load_field_dataset(&flat, 0..2, &options, &device).unwrap_err();
        assert!(err.to_string().contains("data.snapshots") && err.to_string().contains("/trajectories"), "{err}");
        let both = FieldDataOptions { coefficients: true, ..options };
        assert!(matches!(
            load_field_dataset(&reader, 0..2, &both, &device),
            Err(TrainError::Config { key: "data.snapshots", .. })
        ));
    }

    #[test]
    fn eight_gaussians_has_the_stated_modes() {
        let x = eight_gaussians(3, 0..8000);
        let mean = x.mean_axis(Axis(0)).unwrap();
        assert!(mean.iter().all(|m| m.abs() < 0.08), "{mean}");
        let r: Vec<f64> = x.rows().into_iter().map(|p| p.dot(&p).sqrt()).collect();
        let mean_r = r.iter().sum::<f64>() / r.len() as f64;
        assert!((mean_r - 2.0 * std::f64::consts::SQRT_2).abs() < 0.05, "mean radius {mean_r}");
        assert_eq!(eight_gaussians(3, 5..6), x.slice(ndarray::s![5..6, ..]));
    }
}
