//! # autograd: reverse-mode differentiation (not built yet)
//!
//! This layer will record the ops of one forward pass on a *tape* (a
//! Wengert list), then walk the tape backwards to turn the gradient of a
//! scalar loss into the gradient of every parameter. It sits directly on the
//! `tensor` crate: the forward value of every recorded op is a `Tensor`, and
//! every backward rule is written with `Tensor` ops, so the tape works the
//! same whether the data lives on the CPU or the GPU.
//!
//! Status: a placeholder. Issue 4 ("Autograd: reverse-mode differentiation
//! over tensor ops") fills it. Nothing here pretends to work yet.
