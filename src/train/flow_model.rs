//! The interface between the trainer and a velocity network: [`FlowModel`], implemented for the
//! [`Fno`] (fields, rank 4) and the [`Mlp`] (vectors, rank 2).
//!
//! A flow model is a burn [`Module`] built from a serialisable config (saved in checkpoints, so
//! a sampler can rebuild it) that evaluates `v_θ(x, t; c)`, with the conditioning `c` of
//! [`Conditioning`] (fields and scalar parameters, both optional).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::loss::Conditioning;
use crate::model::{Fno, FnoConfig, FnoGrad, Mlp, MlpConfig, ModelError};

/// A velocity network that can be trained: built from a serialisable config, evaluated as
/// `v_θ(x, t; c)`.
pub trait FlowModel<const D: usize>: Module + Sized {
    /// The configuration that builds the model (saved in checkpoints).
    type Config: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// A short name saved in checkpoints (`fno`, `mlp`).
    const KIND: &'static str;

    /// Builds the model on `device`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an invalid config.
    fn init(config: &Self::Config, device: &Device) -> Result<Self, ModelError>;

    /// The velocity at states `x`, times `t` and conditioning `cond`.
    ///
    /// # Shapes
    /// - x: `[B, ...]`; t: `[B]` or `[1]`; output: the shape of `x`
    ///
    /// # Errors
    /// [`ModelError`] for wrong shapes or missing or unexpected conditioning.
    fn velocity(&self, x: Tensor<D>, t: Tensor<1>, cond: Option<&Conditioning>) -> Result<Tensor<D>, ModelError>;

    /// The hand-written CPU training engine for this model, when it has one that covers it
    /// ([`FnoGrad`]); `None` (the default): the trainer uses burn's autodiff.
    fn cpu_engine(&self) -> Option<FnoGrad> {
        None
    }
}

impl FlowModel<4> for Fno {
    type Config = FnoConfig;
    const KIND: &'static str = "fno";

    fn init(config: &FnoConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }

    /// # Shapes
    /// - x: `[B, in_channels, H, W]`; t: `[B]` or `[1]`; cond fields `[B, cond_channels, H, W]`,
    ///   params `[B, scalar_params]`; output: `[B, out_channels, H, W]`
    fn velocity(&self, x: Tensor<4>, t: Tensor<1>, cond: Option<&Conditioning>) -> Result<Tensor<4>, ModelError> {
        let (fields, params) = cond.map_or((None, None), |c| (c.fields.clone(), c.params.clone()));
        self.forward(x, t, fields, params)
    }

    /// The FNO engine, for networks without a Leray output layer.
    fn cpu_engine(&self) -> Option<FnoGrad> {
        FnoGrad::new(self).ok()
    }
}

impl FlowModel<2> for Mlp {
    type Config = MlpConfig;
    const KIND: &'static str = "mlp";

    fn init(config: &MlpConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }

    /// # Shapes
    /// - x: `[B, d]`; t: `[B]` or `[1]`; output: `[B, d]`; no conditioning
    fn velocity(&self, x: Tensor<2>, t: Tensor<1>, cond: Option<&Conditioning>) -> Result<Tensor<2>, ModelError> {
        if cond.is_some_and(|c| !c.is_empty()) {
            let reason = "the MLP takes no conditioning".to_string();
            return Err(ModelError::Conditioning { input: "cond", reason });
        }
        self.forward(x, t)
    }
}
