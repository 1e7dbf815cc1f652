//! `byol bench`: quick figures for the layers of the stack on one device,
//! as a table and a JSON file: a square GEMM (tensor), a 3x3 convolution
//! forward and backward (tensor), a ResNet-18 training step (models,
//! autograd) and a whole BYOL step (byol). Each figure is the median of
//! several timed repetitions after a warm-up; a GPU is synchronised
//! (a read-back) before the clock stops.
//!
//! The crates' own benchmarks (`cargo bench -p tensor`, `-p models`, `-p
//! byol`) measure the sizes the project's issues quote and compare with
//! PyTorch; this command is the quick look at a new machine. `--large`
//! takes the sizes a real GPU needs to be busy (GEMM up to 4096, batch
//! 256, widths 16 and 64, heads 4096/256): `scripts/gpu-check.sh` runs it.

use crate::args::DeviceArgs;
use crate::commands::{CmdResult, Outcome};
use crate::error::CliError;
use crate::report::{self, Table};
use augment::{embedded, two_views, Normalization, Split, TwoViewConfig};
use autograd::{Tape, Var};
use byol::optim::OptimizerKind;
use byol::{ByolStep, NetworkConfig, TargetInit};
use clap::Args;
use models::{Arch, Module, ResNet, ResNetConfig, Stem};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use tensor::{Conv2dParams, Device, Tensor};

/// Flags of `byol bench`.
#[derive(Args, Clone, Debug)]
#[command(after_help = "Examples:
  byol bench
  byol bench --device gpu --out bench-gpu.json
  byol bench --quick      (small sizes: seconds, for checking that it runs)
  byol bench --device gpu --large   (the sizes of scripts/gpu-check.sh)")]
pub struct BenchArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Small sizes and few repetitions.
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Large sizes, for a hardware GPU: GEMM 1024, 2048 and 4096, the
    /// convolution at batch 128, the ResNet-18 step and the BYOL step at
    /// batch 256 (BYOL at widths 16 and 64, heads 4096/256). Minutes on a
    /// CPU.
    #[arg(long)]
    pub large: bool,
    /// The device's f32 peak in TFLOP/s (an H200: about 67), to show each
    /// GFLOP/s figure as a share of it.
    #[arg(long, value_name = "TFLOPS")]
    pub peak_tflops: Option<f64>,
    /// Timed repetitions of each benchmark (median reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// The JSON file to write.
    #[arg(long, value_name = "FILE.json", default_value = "bench.json")]
    pub out: PathBuf,
}

/// One measured figure.
struct Figure {
    name: String,
    size: String,
    millis: f64,
    rate: f64,
    unit: &'static str,
}

/// Median seconds of `reps` runs of `f` after one warm-up run.
fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// Runs `byol bench`.
pub fn run(args: BenchArgs) -> CmdResult {
    if args.reps == 0 {
        return Err(CliError::flag("--reps 0: give at least 1"));
    }
    let dev = args.device.open()?;
    let reps = if args.quick {
        args.reps.min(2)
    } else {
        args.reps
    };
    say!("benchmarking on {}", dev.describe());
    let size = match (args.quick, args.large) {
        (true, _) => Size::Quick,
        (_, true) => Size::Large,
        _ => Size::Default,
    };
    let mut figures = Vec::new();
    // On a GPU, first the rate a kernel of nothing but multiply-adds
    // reaches through wgpu: the ceiling for the kernels below.
    if let Some((s, flops)) = tensor::backend::gpu::probe::fma_probe(&dev, reps) {
        figures.push(Figure {
            name: "f32 multiply-add ceiling".into(),
            size: "independent chains".into(),
            millis: s * 1e3,
            rate: flops / s / 1e9,
            unit: "GFLOP/s",
        });
    }
    let gemm_sides: &[usize] = match size {
        Size::Quick => &[128],
        Size::Default => &[512],
        Size::Large => &[1024, 2048, 4096],
    };
    for &n in gemm_sides {
        figures.push(gemm(&dev, n, reps));
    }
    figures.push(conv(&dev, size, reps));
    figures.push(resnet_step(&dev, size, reps));
    let byol_shapes: &[(usize, usize, usize, usize)] = match size {
        Size::Quick => &[(4, 16, 64, 32)],
        Size::Default => &[(16, 64, 512, 128)],
        Size::Large => &[(16, 256, 4096, 256), (64, 256, 4096, 256)],
    };
    for &shape in byol_shapes {
        figures.push(byol_step(&dev, shape, reps)?);
    }
    // Figures measured on a device that failed on the way are not figures.
    if let Some(e) = dev.take_error() {
        return Err(e.into());
    }
    let share = |f: &Figure| match (args.peak_tflops, f.unit) {
        (Some(peak), "GFLOP/s") if peak > 0.0 => format!("{:.1}%", f.rate / (peak * 10.0)),
        _ => "-".into(),
    };
    let mut header = vec![
        "benchmark".into(),
        "size".into(),
        "median ms".into(),
        "rate".into(),
    ];
    if let Some(peak) = args.peak_tflops {
        header.push(format!("of {peak} TFLOP/s"));
    }
    let table = Table {
        header,
        rows: figures
            .iter()
            .map(|f| {
                let mut row = vec![
                    f.name.clone(),
                    f.size.clone(),
                    format!("{:.2}", f.millis),
                    format!("{:.1} {}", f.rate, f.unit),
                ];
                if args.peak_tflops.is_some() {
                    row.push(share(f));
                }
                row
            })
            .collect(),
    };
    out!("{}", table.text());
    let value = json!({
        "device": dev.describe(),
        "quick": args.quick,
        "large": args.large,
        "reps": reps,
        "results": figures.iter().map(|f| json!({
            "name": f.name, "size": f.size, "median_ms": f.millis,
            "rate": f.rate, "unit": f.unit,
        })).collect::<Vec<_>>(),
    });
    report::write_json(&args.out, &value)?;
    say!("wrote {}", args.out.display());
    Ok(Outcome::Done)
}

/// A square matrix product, `2n³` flops.
fn gemm(dev: &Device, n: usize, reps: usize) -> Figure {
    let a = Tensor::randn(&[n, n], 0.0, 1.0, 1, dev);
    let b = Tensor::randn(&[n, n], 0.0, 1.0, 2, dev);
    // The product alone: waiting for the device, not reading the result
    // (summing it took a large GPU longer than the product until the
    // reductions were cut into parts).
    let s = median_seconds(reps, || {
        let c = a.matmul(&b);
        dev.synchronize();
        drop(c);
    });
    Figure {
        name: "GEMM (tensor)".into(),
        size: format!("{n}x{n}x{n}"),
        millis: s * 1e3,
        rate: 2.0 * (n as f64).powi(3) / s / 1e9,
        unit: "GFLOP/s",
    }
}

/// The set of sizes measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Quick,
    Default,
    Large,
}

/// A 3x3 convolution, padding 1: forward, backward to the input and to the
/// weight, each `2·N·O·C·9·H·W` flops.
fn conv(dev: &Device, size: Size, reps: usize) -> Figure {
    let (n, c, hw) = match size {
        Size::Quick => (4, 16, 16),
        Size::Default => (32, 64, 32),
        Size::Large => (128, 64, 32),
    };
    let x = Tensor::randn(&[n, c, hw, hw], 0.0, 1.0, 3, dev);
    let w = Tensor::randn(&[c, c, 3, 3], 0.0, 0.1, 4, dev);
    let p = Conv2dParams::new(1, 1);
    let s = median_seconds(reps, || {
        let y = x.conv2d(&w, p);
        let gx = y.conv2d_backward_input(&w, x.shape(), p);
        let gw = y.conv2d_backward_weight(&x, w.shape(), p);
        gx.sum_all().item();
        gw.sum_all().item();
    });
    let flops = 3.0 * 2.0 * (n * c * c * 9 * hw * hw) as f64;
    Figure {
        name: "conv2d fwd+bwd (tensor)".into(),
        size: format!("3x3 {c}->{c}, batch {n}, {hw}x{hw}"),
        millis: s * 1e3,
        rate: flops / s / 1e9,
        unit: "GFLOP/s",
    }
}

fn encoder_config(width: usize) -> ResNetConfig {
    ResNetConfig {
        arch: Arch::ResNet18,
        stem: Stem::Cifar,
        in_channels: 1,
        width,
    }
}

/// A ResNet-18 forward and backward of the mean of its features.
fn resnet_step(dev: &Device, size: Size, reps: usize) -> Figure {
    let (width, batch) = match size {
        Size::Quick => (4, 16),
        Size::Default => (16, 64),
        Size::Large => (16, 256),
    };
    let net = ResNet::new(encoder_config(width), 0, dev);
    net.set_training(true);
    let x = Tensor::randn(&[batch, 1, 28, 28], 0.0, 1.0, 5, dev);
    let params = net.parameters();
    let s = median_seconds(reps, || {
        let tape = Tape::new();
        let loss = net.forward(&tape, &Var::constant(x.clone())).mean_all();
        tape.backward(&loss);
        params[0].grad().map(|g| g.sum_all().item());
        for p in &params {
            p.zero_grad();
        }
    });
    Figure {
        name: "ResNet-18 train step (models)".into(),
        size: format!("width {width}, batch {batch}, 1x28x28"),
        millis: s * 1e3,
        rate: batch as f64 / s,
        unit: "img/s",
    }
}

/// A whole BYOL step (`byol::ByolStep::step`, the trainer's) on pre-made
/// views: both views through the online and target networks, the loss,
/// backward, Adam, the moving average; `shape` is (width, batch, hidden,
/// projection).
fn byol_step(
    dev: &Device,
    shape: (usize, usize, usize, usize),
    reps: usize,
) -> Result<Figure, CliError> {
    let (width, batch, hidden, projection) = shape;
    let data = embedded::fashion_mnist_subset(Split::Train)?;
    let views = TwoViewConfig::byol(Normalization::fashion_mnist());
    let idx: Vec<usize> = (0..batch).collect();
    let (b1, b2) = two_views(&data, &idx, 0, 0, &views)?;
    let v1 = Tensor::from_vec(b1.data, &b1.shape, dev);
    let v2 = Tensor::from_vec(b2.data, &b2.shape, dev);
    let config = NetworkConfig {
        encoder: encoder_config(width),
        hidden,
        projection,
        predictor: true,
        target_init: TargetInit::Random,
    };
    let mut byol = ByolStep::new(config, 0, OptimizerKind::Adam, 0.0, dev);
    let mut failed = None;
    let s = median_seconds(reps, || {
        if let Err(e) = byol.step(&v1, &v2, 1e-3, 0.99) {
            failed = Some(e);
        }
        byol.parameters()[0].value().sum_all().item();
    });
    if let Some(e) = failed {
        return Err(CliError::flag(format!("the BYOL step benchmark: {e}")));
    }
    Ok(Figure {
        name: "BYOL step (byol)".into(),
        size: format!("width {width}, batch {batch}, heads {hidden}/{projection}"),
        millis: s * 1e3,
        rate: batch as f64 / s,
        unit: "img/s",
    })
}
