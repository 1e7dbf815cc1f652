//! Training-mode forward + backward throughput of ResNet-18 encoders, in
//! images per second:
//!
//! * `w64`: CIFAR stem, 3x32x32 images, batch 128, width 64;
//! * `w16`: CIFAR stem, 1x28x28 images, batch 256, width 16.
//!
//! One step is: a fresh tape, the forward pass in training mode (batch
//! statistics), `loss = Σ features · r` for a fixed random `r`, and the
//! backward pass into every parameter's gradient. The same step in PyTorch
//! is `benches/resnet_torch.py`; run both in one go to compare.
//!
//! Run: `cargo bench -p models --bench resnet_bench [-- --device gpu]
//! [--only w16|w64] [--steps N] [--profile]`. Each figure is the median of
//! the timed steps after two warm-up steps. Like the `byol` command, the
//! benchmark keeps freed memory in the allocator
//! (`tensor::reuse_freed_memory`). `--profile` then times one more step op
//! by op (`autograd::profile`) and prints the table.

use autograd::{Tape, Var};
use models::{Arch, Module, ResNet, ResNetConfig, Stem};
use std::time::Instant;
use tensor::{Device, Tensor};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    tensor::reuse_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let device_name = arg(&args, "--device").unwrap_or_else(|| "cpu".into());
    let dev = Device::from_name(&device_name).unwrap_or_else(|e| {
        eprintln!("resnet benchmark: {e}");
        std::process::exit(2);
    });
    let only = arg(&args, "--only");
    let steps: usize = arg(&args, "--steps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("resnet benchmark: {}", dev.describe());
    let cases = [
        ("w64", 3usize, 32usize, 128usize, 64usize),
        ("w16", 1, 28, 256, 16),
    ];
    let mut json = Vec::new();
    for (name, channels, size, batch, width) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let config = ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: channels,
            width,
        };
        let net = ResNet::new(config, 0, &dev);
        net.set_training(true);
        let x = Var::constant(Tensor::randn(
            &[batch, channels, size, size],
            0.0,
            1.0,
            1,
            &dev,
        ));
        let r = Var::constant(Tensor::randn(
            &[batch, net.feature_dim()],
            0.0,
            1.0,
            2,
            &dev,
        ));
        let step = || {
            for p in net.parameters() {
                p.zero_grad();
            }
            let tape = Tape::new();
            let loss = net.forward(&tape, &x).mul(&r).sum_all();
            tape.backward(&loss);
            // Wait for the last gradient (the GPU records asynchronously).
            net.parameters()[0].grad().map(|g| g.sum_all().item());
        };
        for _ in 0..2 {
            step();
        }
        let mut rates: Vec<f64> = (0..steps)
            .map(|_| {
                let start = Instant::now();
                step();
                batch as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        if args.iter().any(|a| a == "--profile") {
            autograd::profile::start();
            let start = Instant::now();
            step();
            let took = start.elapsed();
            let times = autograd::profile::finish();
            println!(
                "one more step, op by op ({:.1} ms, of which the tape's ops {:.1}):\n{times}",
                took.as_secs_f64() * 1e3,
                times.total().as_secs_f64() * 1e3
            );
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = rates[rates.len() / 2];
        println!(
            "ResNet-18 {name}: {channels}x{size}x{size}, batch {batch}, width {width}: {median:.1} images/s (train forward+backward)"
        );
        json.push(format!("\"{name}_img_s\": {median:.1}"));
    }
    println!(
        "RESULT {{\"device\": \"{}\", {}}}",
        dev.describe(),
        json.join(", ")
    );
}
