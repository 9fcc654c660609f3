//! The bridge between the `pde` crate's constraints (f64, ndarray) and burn tensors (f32).

pub mod bridge;
pub mod project;

pub use bridge::{to_array, to_tensor};
pub use project::{ConstraintError, project_array, project_tensor, relative_violations, tensor_to_array4, violations};
