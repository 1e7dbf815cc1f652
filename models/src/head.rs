//! The MLP head BYOL uses as projector and predictor:
//! `Linear(in → hidden, bias) → BatchNorm1d → ReLU → Linear(hidden → out,
//! no bias)`, hidden 4096 and out 256 in the paper.
//!
//! Its parameters are named as a PyTorch `nn.Sequential` called `net` names
//! them (`net.0.weight`, `net.1.running_mean`, `net.3.weight`; index 2 is
//! the ReLU), under the prefix the head is given (`projector`,
//! `predictor`).

use crate::init::Seeds;
use crate::layers::{BatchNorm, Linear};
use crate::module::{join, Module};
use autograd::{Param, Tape, Var};
use std::collections::BTreeMap;
use tensor::{Device, Tensor};

/// A two-layer MLP with batch norm.
pub struct MlpHead {
    fc1: Linear,
    bn: BatchNorm,
    fc2: Linear,
}

impl MlpHead {
    /// A head named `prefix` from `input` to `hidden` to `output` features.
    pub fn new(
        prefix: &str,
        input: usize,
        hidden: usize,
        output: usize,
        seeds: &mut Seeds,
        device: &Device,
    ) -> MlpHead {
        let net = join(prefix, "net");
        MlpHead {
            fc1: Linear::new(&join(&net, "0"), input, hidden, true, seeds, device),
            bn: BatchNorm::new(&join(&net, "1"), hidden, device),
            fc2: Linear::new(&join(&net, "3"), hidden, output, false, seeds, device),
        }
    }
}

impl MlpHead {
    /// The sizes `(input, hidden, output)` of the head whose tensors these
    /// are, under the head's name `prefix` (`projector`): read from the
    /// shapes of `<prefix>.net.0.weight` (`[hidden, input]`) and
    /// `<prefix>.net.3.weight` (`[output, hidden]`), without building one.
    /// `None` when either is missing, not a matrix, or the two disagree on
    /// the hidden width.
    pub fn infer(
        tensors: &BTreeMap<String, Tensor>,
        prefix: &str,
    ) -> Option<(usize, usize, usize)> {
        let net = join(prefix, "net");
        let first = tensors.get(&join(&net, "0.weight"))?;
        let last = tensors.get(&join(&net, "3.weight"))?;
        match (first.shape(), last.shape()) {
            (&[hidden, input], &[output, hidden2]) if hidden == hidden2 => {
                Some((input, hidden, output))
            }
            _ => None,
        }
    }
}

impl Module for MlpHead {
    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let h = self.bn.forward_relu(tape, &self.fc1.forward(tape, x));
        self.fc2.forward(tape, &h)
    }

    fn parameters(&self) -> Vec<Param> {
        let mut p = self.fc1.parameters();
        p.extend(self.bn.parameters());
        p.extend(self.fc2.parameters());
        p
    }

    fn buffers(&self) -> Vec<Param> {
        self.bn.buffers()
    }

    fn set_training(&self, training: bool) {
        self.bn.set_training(training);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sizes_are_read_back_from_the_tensors() {
        let head = MlpHead::new("projector", 12, 7, 3, &mut Seeds::new(1), &Device::Cpu);
        let mut tensors: BTreeMap<String, Tensor> = head
            .state()
            .iter()
            .map(|p| (p.name().to_string(), p.value()))
            .collect();
        assert_eq!(MlpHead::infer(&tensors, "projector"), Some((12, 7, 3)));
        assert_eq!(MlpHead::infer(&tensors, "predictor"), None);
        tensors.insert(
            "projector.net.3.weight".into(),
            Tensor::zeros(&[3, 8], &Device::Cpu),
        );
        assert_eq!(MlpHead::infer(&tensors, "projector"), None);
    }
}
