//! # models: layers, ResNets and MLP heads (not built yet)
//!
//! This layer will hold the building blocks of the networks BYOL trains:
//! `Conv2d`, `BatchNorm`, `Linear`, pooling, the ResNet-18/34/50 encoders
//! and the MLP heads used as projector and predictor. Each module owns named
//! parameters (named as torchvision names them, so weights move to and from
//! PyTorch through safetensors files) and runs its forward pass through
//! `autograd`, which in turn runs on `tensor`.
//!
//! Status: a placeholder. Issue 6 ("models: layers, ResNets and MLP heads,
//! with PyTorch-compatible weights") fills it.
