//! A ResNet-18 encoder (CIFAR stem, base width 8, 3 input channels) built,
//! run forward and backward on a random batch, its parameters listed with
//! torchvision's names, and its weights saved to a safetensors file and
//! loaded into a second encoder, which then gives the same features.
//!
//! ```text
//! cargo run --release -p models --example resnet_forward
//! ```

use autograd::{no_grad, Tape, Var};
use models::weights::{self, LoadMode};
use models::{Arch, Module, ResNet, ResNetConfig, Stem};
use tensor::{Device, Tensor};

/// The encoder's eval-mode features of `images` (batch norm with its
/// running statistics, nothing recorded).
fn features(encoder: &ResNet, images: &Tensor) -> Tensor {
    encoder.set_training(false);
    let x = Var::constant(images.clone());
    no_grad(|| encoder.forward(&Tape::new(), &x))
        .value()
        .clone()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.to_vec(), b.to_vec());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let config = ResNetConfig {
        arch: Arch::ResNet18,
        stem: Stem::Cifar,
        in_channels: 3,
        width: 8, // torchvision's is 64; channels per stage are 8, 16, 32, 64
    };
    let encoder = ResNet::new(config, 0, &dev);
    println!(
        "{} ({} stem, width {}, {} input channels): {} parameters in {} tensors, {} buffers",
        config.arch,
        config.stem,
        config.width,
        config.in_channels,
        encoder.param_count(),
        encoder.parameters().len(),
        encoder.buffers().len()
    );
    println!("the first 15 parameters, with torchvision's names:");
    for p in encoder.parameters().iter().take(15) {
        println!("  {:<28} {:?}", p.name(), p.shape());
    }
    println!("and the first buffers:");
    for p in encoder.buffers().iter().take(3) {
        println!("  {:<28} {:?}", p.name(), p.shape());
    }

    // Training mode: batch norm normalises with the batch's statistics (and
    // updates its running ones). The forward pass is recorded on a tape, so
    // a backward pass can follow.
    let images = Tensor::randn(&[4, 3, 32, 32], 0.0, 1.0, 1, &dev);
    encoder.set_training(true);
    let tape = Tape::new();
    let out = encoder.forward(&tape, &Var::constant(images.clone()));
    println!();
    println!(
        "forward of {:?} in training mode -> {:?} (features = 8 x width), {} tape nodes",
        images.shape(),
        out.shape(),
        tape.len()
    );
    let loss = out.square().mean_all();
    tape.backward(&loss);
    let with_grad = encoder
        .parameters()
        .iter()
        .filter(|p| p.grad().is_some())
        .count();
    let conv1_grad = encoder.parameters()[0].grad().expect("conv1 is used");
    println!(
        "backward of mean(features²) = {:.4}: gradients for {with_grad} of {} parameter tensors, |d conv1.weight| = {:.4}",
        loss.item(),
        encoder.parameters().len(),
        conv1_grad.norm_l2().item()
    );

    // Weights round trip: save, then load into an encoder built from
    // another seed, whose features differ until the load.
    let path = std::env::temp_dir().join(format!("resnet18-w8-{}.safetensors", std::process::id()));
    weights::save(&encoder, &path)?;
    let size = std::fs::metadata(&path)?.len();
    let other = ResNet::new(config, 1, &dev);
    let before = max_abs_diff(&features(&encoder, &images), &features(&other, &images));
    let report = weights::load(&other, &path, LoadMode::Strict)?;
    let after = max_abs_diff(&features(&encoder, &images), &features(&other, &images));
    std::fs::remove_file(&path)?;
    println!();
    println!(
        "saved {} tensors ({size} bytes of safetensors) and loaded {} into a second encoder",
        encoder.state().len(),
        report.loaded
    );
    println!("eval-mode features, max |difference| between the two encoders: {before:.4} before the load, {after} after");

    // torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in
    // its 1000-class fc layer, which an encoder does not have.
    let full = ResNet::new(
        ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::ImageNet,
            in_channels: 3,
            width: 64,
        },
        0,
        &dev,
    );
    println!(
        "for comparison, the full-size ResNet-18 (ImageNet stem, width 64): {} parameters = torchvision's 11689512 minus the 513000 of its fc layer",
        full.param_count()
    );
    Ok(())
}
