//! Throughput of one whole BYOL training step, in images per second, the
//! twin of the PyTorch script `byol_step_bench.py --impl plain` that the
//! project's issues quote: ResNet-18 (CIFAR stem, 1 input channel), 28x28
//! images, batch 256, projector and predictor 4096 -> 256, every module in
//! training mode, Adam lr 1e-3 without weight decay, τ 0.99.
//!
//! A step is `byol::ByolStep::step`, the trainer's: online forward of view 1
//! and of view 2 (separate batches), target forward of both under
//! `no_grad`, the symmetric loss and collapse signal read back, backward,
//! the Adam step, the moving-average update. The views are made before the clock
//! starts (augmentation is not timed). The figure is the median of the
//! timed steps after two warm-up steps; the peak resident memory of the
//! process is printed too. Like the `byol` command, the benchmark keeps
//! freed memory in the allocator (`tensor::reuse_freed_memory`).
//!
//! Run: `cargo bench -p byol --bench step_bench [-- --device gpu]
//! [--width 16|64] [--steps N]`.

use augment::{embedded, two_views, Normalization, Split, TwoViewConfig};
use byol::optim::OptimizerKind;
use byol::{ByolStep, NetworkConfig, TargetInit};
use models::{Arch, ResNetConfig, Stem};
use std::time::Instant;
use tensor::{Device, Tensor};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    // As the `byol` command does: freed buffers stay for the next step.
    tensor::reuse_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let dev = Device::from_name(&arg(&args, "--device").unwrap_or_else(|| "cpu".into()))
        .unwrap_or_else(|e| {
            eprintln!("step benchmark: {e}");
            std::process::exit(2);
        });
    let steps: usize = arg(&args, "--steps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let widths: Vec<usize> = match arg(&args, "--width") {
        Some(w) => vec![w.parse().expect("--width takes a number")],
        None => vec![16, 64],
    };
    let batch = 256;
    let data = embedded::fashion_mnist_subset(Split::Train).expect("the embedded subset reads");
    let views = TwoViewConfig::byol(Normalization::fashion_mnist());
    let idx: Vec<usize> = (0..batch).collect();
    let (b1, b2) = two_views(&data, &idx, 0, 0, &views).expect("views");
    let v1 = Tensor::from_vec(b1.data, &b1.shape, &dev);
    let v2 = Tensor::from_vec(b2.data, &b2.shape, &dev);
    println!("BYOL step benchmark: {}", dev.describe());
    let mut json = Vec::new();
    for width in widths {
        let config = NetworkConfig {
            encoder: ResNetConfig {
                arch: Arch::ResNet18,
                stem: Stem::Cifar,
                in_channels: 1,
                width,
            },
            hidden: 4096,
            projection: 256,
            predictor: true,
            target_init: TargetInit::Random,
        };
        // Adam with PyTorch's defaults and no weight decay, as the script.
        let mut byol = ByolStep::new(config, 0, OptimizerKind::Adam, 0.0, &dev);
        let mut step = || {
            let stats = byol.step(&v1, &v2, 1e-3, 0.99).expect("a finite loss");
            // Wait for the update to finish on a GPU.
            byol.parameters()[0].value().sum_all().item();
            stats.loss
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
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = rates[rates.len() / 2];
        let peak = peak_rss_mib()
            .map(|m| format!("{m:.0} MiB"))
            .unwrap_or_else(|| "unknown".into());
        println!("ResNet-18 width {width}, batch {batch}, 1x28x28, heads 4096/256, Adam: {median:.1} images/s (peak RSS so far {peak})");
        json.push(format!("\"width{width}_img_s\": {median:.1}"));
    }
    println!(
        "RESULT {{\"device\": \"{}\", {}}}",
        dev.describe(),
        json.join(", ")
    );
}
