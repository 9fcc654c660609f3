//! The bridge between the `pde` crate's constraints (f64, ndarray) and burn tensors (f32).

pub mod bridge;

pub use bridge::{to_array, to_tensor};
