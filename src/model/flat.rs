//! A module's float parameters as one flat `f32` buffer, in burn's visiting order, and back.
//!
//! Hand-written engines (the FNO training engine, its AdamW and EMA) work on flat buffers; these
//! functions are the bridge to burn modules: [`FlatParams::of`] reads every parameter (with its
//! shape and [`ParamId`]), [`FlatParams::write_into`] puts values back into a module of the same
//! architecture, keeping its parameter ids (so burn's optimiser state and records stay keyed to
//! the same parameters).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use super::ModelError;

/// One parameter tensor inside a flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Offset of the first value.
    pub offset: usize,
    /// The tensor's shape (row-major).
    pub dims: Vec<usize>,
    /// burn's id of the parameter.
    pub id: ParamId,
}

impl Slot {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value range in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Every float parameter of a module, flattened in visiting order.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatParams {
    /// The values, parameter after parameter.
    pub values: Vec<f32>,
    /// Where each parameter lives in `values`.
    pub slots: Vec<Slot>,
}

impl FlatParams {
    /// Reads the parameters of `module`.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if a parameter cannot be read back as `f32` data.
    pub fn of<M: Module>(module: &M) -> Result<Self, ModelError> {
        struct Read {
            out: FlatParams,
            error: Option<ModelError>,
        }
        impl ModuleVisitor for Read {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                let dims = value.dims().to_vec();
                match value.try_into_vec_as::<f32>() {
                    Ok(v) => {
                        let offset = self.out.values.len();
                        self.out.values.extend(v);
                        self.out.slots.push(Slot { offset, dims, id: param.id });
                    }
                    Err(_) => {
                        self.error.get_or_insert(ModelError::shape("parameter", "f32 data", &dims));
                    }
                }
            }
        }
        let mut read = Read { out: FlatParams { values: Vec::new(), slots: Vec::new() }, error: None };
        module.visit(&mut read);
        match read.error {
            Some(e) => Err(e),
            None => Ok(read.out),
        }
    }

    /// Total number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `module` with its parameters replaced by `values` (laid out as `self.slots`), keeping the
    /// parameter ids, devices and `require_grad` flags.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if the module's parameters do not match the slots (another
    /// architecture) or `values` has the wrong length.
    pub fn write_into<M: Module>(slots: &[Slot], values: &[f32], module: M) -> Result<M, ModelError> {
        struct Write<'a> {
            slots: std::slice::Iter<'a, Slot>,
            values: &'a [f32],
            error: Option<ModelError>,
        }
        impl ModuleMapper for Write<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let Some(slot) = self.slots.next() else {
                    self.error.get_or_insert(ModelError::shape("parameters", "as many as the slots", &[]));
                    return param;
                };
                let dims = param.lazy_shape().to_vec();
                if dims != slot.dims || slot.range().end > self.values.len() {
                    self.error.get_or_insert(ModelError::shape("parameter", format!("{:?}", slot.dims), &dims));
                    return param;
                }
                let data = TensorData::new(self.values[slot.range()].to_vec(), dims);
                param.map(|old| {
                    let grad = old.is_require_grad();
                    Tensor::from_data(data, &old.device()).set_require_grad(grad)
                })
            }
        }
        let mut write = Write { slots: slots.iter(), values, error: None };
        let out = module.map(&mut write);
        if write.slots.next().is_some() {
            write.error.get_or_insert(ModelError::shape("parameters", "as many as the slots", &[]));
        }
        match write.error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
