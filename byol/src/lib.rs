//! # byol: the method (not built yet)
//!
//! Bootstrap Your Own Latent (Grill et al. 2020) learns an image encoder
//! without labels. An *online* network (encoder, projector, predictor) is
//! trained to predict, from one augmented view of an image, the projection
//! that a *target* network (encoder, projector) gives for another view of
//! the same image. The target is never trained by gradients: its weights are
//! an exponential moving average of the online weights.
//!
//! This crate will hold that method readable next to the paper: the
//! networks, the symmetric `2 - 2 cos` loss, the moving-average schedule,
//! LARS and the other optimisers, learning-rate schedules, evaluation (kNN,
//! linear probe, fine-tuning) and checkpoints that resume a run exactly.
//!
//! Status: a placeholder. Issue 7 ("byol: the BYOL trainer, evaluation, and
//! checkpoints that resume exactly") fills it.
