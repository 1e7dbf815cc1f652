//! Machinery the ops share, one module per backend.
//!
//! An op's own folder holds what is particular to it (its math, its
//! kernel); what many ops need (a matrix product, the policy for splitting
//! work over threads) lives here so it is written once.

pub mod cpu;
pub mod gpu;
