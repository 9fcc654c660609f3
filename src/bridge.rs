//! The tensor ↔ array bridge: conversions between the `pde` crate's `f64` ndarray fields and
//! burn's `f32` tensors, used wherever numerics meet networks (sources, paths, losses, samplers,
//! projections, the data loader).
//!
//! This is the one place where the two worlds meet (besides the data loader): networks run in
//! `f32`, numerics in `f64`, and values cross here.

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array, ArrayView, Dimension, IxDyn};

/// A tensor of rank `D` holding `a` converted to `f32`.
///
/// # Panics
/// Never for `D` equal to `a.ndim()`; a rank mismatch is a programming error and panics in debug
/// builds (it is checked by `debug_assert`).
pub fn to_tensor<const D: usize, Dm: Dimension>(a: ArrayView<'_, f64, Dm>, device: &Device) -> Tensor<D> {
    debug_assert_eq!(a.ndim(), D, "rank of the array and the tensor differ");
    let shape = a.shape().to_vec();
    let values: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The values of `t` as an `f64` array of the same shape.
///
/// # Errors
/// When the backend cannot read the tensor back (device errors).
pub fn to_array<const D: usize>(t: Tensor<D>) -> Result<Array<f64, IxDyn>, String> {
    let dims = t.dims().to_vec();
    let data = t.into_data();
    let values: Vec<f32> = data.convert::<f32>().try_into_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    Array::from_shape_vec(IxDyn(&dims), values.into_iter().map(f64::from).collect()).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ndarray::{Array4, Ix4};

    #[test]
    fn round_trip_keeps_shape_order_and_f32_values() {
        let device = Device::default();
        let a = Array4::from_shape_fn((2, 3, 4, 5), |(b, c, y, x)| (b * 1000 + c * 100 + y * 10 + x) as f64 + 0.25);
        let t: Tensor<4> = to_tensor(a.view(), &device);
        assert_eq!(t.dims(), [2, 3, 4, 5]);
        let back = to_array(t).unwrap().into_dimensionality::<Ix4>().unwrap();
        assert_eq!(back, a);
        // Values are rounded to f32 on the way in.
        let b = ndarray::arr1(&[0.1_f64]);
        let back = to_array(to_tensor::<1, _>(b.view(), &device)).unwrap();
        assert_eq!(back[0], f64::from(0.1_f32));
    }
}
