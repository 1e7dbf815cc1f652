//! # autograd: reverse-mode differentiation over tensor ops
//!
//! Training a network means following the gradient of a scalar loss with
//! respect to every parameter. This crate computes those gradients for any
//! program written with its ops, by *reverse-mode automatic
//! differentiation*: record the ops as the forward pass runs, then walk the
//! record backwards, applying the chain rule one op at a time. It sits
//! directly on the [`tensor`] crate: every value is a [`tensor::Tensor`] and
//! every gradient rule is written with tensor ops, so the same code runs on
//! the CPU and the GPU (the device is taken from the input tensors).
//!
//! ## The pieces
//!
//! * A [`Tape`] (a *Wengert list*) records one forward pass: a list of
//!   nodes in the order they were computed. A fresh tape is made for each
//!   training step and dropped after it, taking with it everything it
//!   saved.
//! * A [`Var`] is a value of the forward pass: a tensor and, when it is
//!   *tracked*, the index of its node on the tape. Ops are methods on `Var`
//!   (`x.matmul(&w)`, `x.conv2d(&w, params)`, `x.relu()`); each one
//!   computes its value with the tensor op of the same name and appends a
//!   node holding its *backward rule*. Untracked vars are constants: input
//!   data, labels, anything [`Var::detach`]ed.
//! * A [`Param`] is a trainable tensor that outlives the tapes: it owns its
//!   value and its accumulated gradient. [`Tape::param`] puts it on a tape
//!   as a leaf, and [`Tape::backward`] adds its gradient into it.
//! * [`no_grad`](no_grad()) runs code without recording anything (the BYOL target
//!   network, evaluation).
//! * [`profile`] times a step op by op, forward and backward (opt in:
//!   [`profile::start`], [`profile::finish`]).
//! * [`ops`] holds the ops, one small file per family, each rule next to its
//!   forward pass with the math in its doc comment.
//!
//! ## One backward pass, step by step
//!
//! Take `x = [1, 2, 3]` (a leaf whose gradient we want), a parameter
//! `w = [0.5, -1, 2]`, and
//!
//! ```text
//! loss = Σ ( relu(x · w) + x )
//! ```
//!
//! The forward pass leaves six nodes on the tape:
//!
//! ```text
//! node 0  leaf x                    [1, 2, 3]
//! node 1  param w                   [0.5, -1, 2]
//! node 2  mul(0, 1)        y =      [0.5, -2, 6]
//! node 3  relu(2)          r =      [0.5, 0, 6]
//! node 4  add(3, 0)        s =      [1.5, 2, 9]
//! node 5  sum_all(4)       loss =   12.5
//! ```
//!
//! `backward(loss)` gives node 5 the gradient 1, then visits nodes 5, 4, ...,
//! 0. Each op node hands its gradient to its rule and adds what comes back
//! into its inputs' gradients:
//!
//! ```text
//! node 5  sum_all: ds = 1 everywhere                       -> node 4: [1, 1, 1]
//! node 4  add:     dr = ds, dx = ds                        -> node 3: [1, 1, 1]
//!                                                           -> node 0: [1, 1, 1]
//! node 3  relu:    dy = dr · [y > 0]                       -> node 2: [1, 0, 1]
//! node 2  mul:     dx = dy · w,  dw = dy · x               -> node 0: += [0.5, 0, 2]
//!                                                           -> node 1: [1, 0, 3]
//! node 1  param:   w.grad += [1, 0, 3]
//! node 0  leaf:    dloss/dx = [1.5, 1, 3]
//! ```
//!
//! `x` was used twice (by `mul` and by `add`), so its gradient is the sum of
//! the two contributions. As the walk passes a node, that node's gradient
//! and its rule (with the tensors it saved) are freed.
//!
//! ```
//! use autograd::{Param, Tape};
//! use tensor::{Device, Tensor};
//!
//! let dev = Device::Cpu;
//! let w = Param::new("w", Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3], &dev));
//!
//! let tape = Tape::new();
//! let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &dev));
//! let wv = tape.param(&w);
//! let loss = x.mul(&wv).relu().add(&x).sum_all();
//! assert_eq!(tape.len(), 6);
//! assert_eq!(loss.item(), 12.5);
//!
//! let grads = tape.backward(&loss);
//! assert_eq!(grads.get(&x).unwrap().to_vec(), vec![1.5, 1.0, 3.0]);
//! assert_eq!(w.grad().unwrap().to_vec(), vec![1.0, 0.0, 3.0]);
//! ```
//!
//! ## A training step
//!
//! ```text
//! for batch in data {
//!     let tape = Tape::new();                       // fresh each step
//!     let x = Var::constant(batch.images);          // data: no gradient
//!     let logits = model.forward(&tape, &x);        // tape.param(&p) inside
//!     let loss = logits.cross_entropy(&batch.labels);
//!     tape.backward(&loss);                         // grads into the Params
//!     optimiser.step(&params);                      // reads p.grad(), p.set_value(..)
//!     params.iter().for_each(Param::zero_grad);
//! }                                                 // tape and vars dropped: all freed
//! ```
//!
//! ## Memory
//!
//! Vars hold the tape by `Rc`; nodes hold tensors and parameter handles but
//! never a tape, so there are no reference cycles, and when the tape and
//! its vars go out of scope every node is freed. [`live_nodes`] counts the
//! nodes alive on the current thread; the tests run a few hundred training
//! steps of a small convolutional network and check that it returns to the
//! same value after every step, and that each parameter holds exactly one
//! gradient buffer.
//!
//! ## How it is checked
//!
//! Every op's rule is compared with central finite differences of its
//! forward pass (`tests/gradcheck.rs`), the fused batch norm with the same
//! computation recorded op by op, and convolution, batch norm, linear,
//! pooling, cross-entropy and the BYOL loss with gradients PyTorch computed
//! (`tests/pytorch_fixtures.rs`). Where a GPU is available the gradients
//! computed there are compared with the CPU's.

#![warn(missing_docs)]

pub mod no_grad;
pub mod ops;
pub mod param;
pub mod profile;
pub mod sync;
pub mod tape;
pub mod var;

pub use no_grad::{is_grad_enabled, no_grad};
pub use ops::batchnorm::BatchNormTrain;
pub use param::Param;
pub use sync::with_batch_norm_group;
pub use tape::{live_nodes, Gradients, Tape};
pub use var::Var;
