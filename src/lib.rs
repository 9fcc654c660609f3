//! # fieldflow
//!
//! Generate physical fields on grids with flow matching while enforcing the physics.
//!
//! The numerics live in [`fieldflow_pde`] (re-exported as [`pde`]), HDF5 data in
//! [`fieldflow_datasets`] (re-exported as [`datasets`]). This crate holds the job configs and the
//! command-line program; flow matching on burn is added here as it lands.

pub mod bridge;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod normalize;
pub mod path;
pub mod plot;
pub mod sample;
pub mod train;

pub use fieldflow_datasets as datasets;
pub use fieldflow_pde as pde;
