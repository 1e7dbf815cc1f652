//! Memory stays flat over many training steps.
//!
//! A small convolutional network (conv - batch norm - relu - max-pool -
//! conv - batch norm - relu - global average pool - linear - cross-entropy)
//! takes 300 steps of plain gradient descent on one batch, each with a
//! fresh tape, and a second forward pass under `no_grad` (as the BYOL
//! target network runs). What is counted:
//!
//! * **tape nodes alive on this thread** ([`autograd::live_nodes`]). Every
//!   tensor the tape keeps (inputs saved by the backward rules, max-pool
//!   indices, batch-norm statistics) is owned by a node, so when the count
//!   is back at its starting value after each step, nothing the step
//!   recorded survived it; and during the step it equals the tape's length,
//!   which is the same every step;
//! * **holders of each parameter's buffers**: after the step (tape dropped)
//!   the parameter's gradient and value buffers are each held by the
//!   parameter alone (the `Arc` around the buffer has one owner besides the
//!   handle the test reads it through), so gradients neither pile up nor
//!   stay shared with a dead tape.
//!
//! Buffers a step allocates and frees again (intermediate values) are the
//! tensor crate's; they are freed with the last `Tensor` holding them, which
//! the counts above show is gone.

mod common;

use autograd::{live_nodes, no_grad, Param, Tape, Var};
use common::{assert_close, devices};
use std::sync::Arc;
use tensor::{Conv2dParams, Device, Pool2dParams, Storage, Tensor};

struct Net {
    params: Vec<Param>,
}

impl Net {
    fn new(dev: &Device) -> Net {
        let p = |name: &str, shape: &[usize], std: f32, seed: u64| {
            Param::new(name, Tensor::randn(shape, 0.0, std, seed, dev))
        };
        let ones = |name: &str, c: usize| Param::new(name, Tensor::ones(&[c], dev));
        let zeros = |name: &str, c: usize| Param::new(name, Tensor::zeros(&[c], dev));
        Net {
            params: vec![
                p("conv1.weight", &[4, 1, 3, 3], 0.5, 1),
                ones("bn1.weight", 4),
                zeros("bn1.bias", 4),
                p("conv2.weight", &[6, 4, 3, 3], 0.3, 2),
                ones("bn2.weight", 6),
                zeros("bn2.bias", 6),
                p("fc.weight", &[3, 6], 0.5, 3),
                zeros("fc.bias", 3),
            ],
        }
    }

    fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let v: Vec<Var> = self.params.iter().map(|p| tape.param(p)).collect();
        let conv = Conv2dParams::new(1, 1);
        let h = x.conv2d(&v[0], conv);
        let h = h.batch_norm_train(&v[1], &v[2], 1e-5).y.relu();
        let h = h.max_pool2d(Pool2dParams::new(2, 2, 0));
        let h = h.conv2d(&v[3], conv);
        let h = h.batch_norm_train(&v[4], &v[5], 1e-5).y.relu();
        h.global_avg_pool2d().linear(&v[6], Some(&v[7]))
    }
}

/// How many owners the buffer behind `t` has, `t` itself included.
fn holders(t: &Tensor) -> usize {
    match t.storage() {
        Storage::Cpu(b) => Arc::strong_count(b),
        Storage::Gpu(b) => Arc::strong_count(b),
    }
}

#[test]
fn three_hundred_steps_keep_memory_flat() {
    let dev = Device::Cpu;
    let net = Net::new(&dev);
    let x = Var::constant(Tensor::randn(&[6, 1, 8, 8], 0.0, 1.0, 10, &dev));
    let labels = [0, 1, 2, 2, 1, 0];
    let baseline = live_nodes();
    let mut tape_len = None;
    let mut losses = Vec::new();

    for step in 0..300 {
        {
            let tape = Tape::new();
            let logits = net.forward(&tape, &x);
            let loss = logits.cross_entropy(&labels);
            let recorded = tape.len();
            // The target-network pattern: a forward pass that records nothing.
            let target = no_grad(|| net.forward(&tape, &x));
            assert!(!target.is_tracked());
            assert_eq!(tape.len(), recorded, "step {step}: no_grad recorded nodes");

            assert_eq!(
                *tape_len.get_or_insert(recorded),
                recorded,
                "step {step}: tape length"
            );
            assert_eq!(
                live_nodes(),
                baseline + recorded,
                "step {step}: nodes alive mid-step"
            );
            tape.backward(&loss);
            losses.push(loss.item());
        } // the tape and every var on it are dropped here
        assert_eq!(
            live_nodes(),
            baseline,
            "step {step}: nodes left after the step"
        );

        for p in &net.params {
            let g = p.grad().expect("every parameter gets a gradient");
            assert_eq!(
                holders(&g),
                2,
                "step {step}: {} grad buffer shared",
                p.name()
            );
            p.set_value(p.value().sub(&g.mul_scalar(0.1)));
            p.zero_grad();
            assert!(p.grad().is_none());
            assert_eq!(
                holders(&p.value()),
                2,
                "step {step}: {} value shared",
                p.name()
            );
        }
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(
        last < 0.5 * first,
        "training on one batch should fit it: loss {first} -> {last}"
    );
}

/// Two backward passes without `zero_grad` leave the sum of their gradients
/// in one buffer.
#[test]
fn gradients_accumulate_in_one_buffer() {
    for dev in devices() {
        let net = Net::new(&dev);
        let x = Var::constant(Tensor::randn(&[4, 1, 6, 6], 0.0, 1.0, 11, &dev));
        let run = || {
            let tape = Tape::new();
            let loss = net.forward(&tape, &x).cross_entropy(&[0, 1, 2, 0]);
            tape.backward(&loss);
        };
        run();
        let once: Vec<Tensor> = net.params.iter().map(|p| p.grad().unwrap()).collect();
        run();
        for (p, g1) in net.params.iter().zip(&once) {
            let g2 = p.grad().unwrap();
            assert_eq!(holders(&g2), 2, "{}: one gradient buffer", p.name());
            assert_close(&g2, &g1.mul_scalar(2.0), 1e-5, 1e-5, p.name());
        }
        assert_eq!(live_nodes(), 0);
    }
}
