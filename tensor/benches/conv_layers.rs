//! The 3x3 stride-1 convolutions of a ResNet-18 on 28x28 images, layer by
//! layer, with im2col + GEMM and with Winograd F(2x2, 3x3) side by side:
//! the measurement behind [`tensor::ops::conv2d::CpuConv::for_layer`].
//!
//! Run: `cargo bench -p tensor --bench conv_layers` (all threads;
//! `-- --batch N` and `-- --width W` pick one batch size or base width,
//! default batch 256 at widths 16 and 64). Each figure is the fastest of
//! five timings of at least 0.3 s, in milliseconds per call, for
//! the forward pass, the input gradient and the weight gradient. `chosen`
//! is what the library picks for the layer.

mod common;

use common::millis;
use tensor::ops::conv2d::{
    conv2d_backward_input_cpu_with, conv2d_backward_weight_cpu_with, conv2d_cpu_with, ConvGeometry,
    CpuConv,
};
use tensor::{Conv2dParams, Device, Tensor};

fn option(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    let value = args.get(i + 1)?;
    Some(value.parse().unwrap_or_else(|_| {
        eprintln!("conv_layers: {name} {value:?} is not a whole number");
        std::process::exit(2)
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch = option(&args, "--batch").unwrap_or(256);
    let widths = option(&args, "--width").map_or(vec![16, 64], |w| vec![w]);
    let dev = Device::Cpu;
    let p = Conv2dParams::new(1, 1);
    println!(
        "3x3 stride-1 layers of a ResNet-18 on 28x28, batch {batch}, {} threads (ms per call)",
        rayon::current_num_threads()
    );
    println!(
        "{:>8} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6} | chosen",
        "channels",
        "plane",
        "fwd i2c",
        "fwd wino",
        "ratio",
        "dx i2c",
        "dx wino",
        "ratio",
        "dw i2c",
        "dw wino",
        "ratio"
    );
    for width in widths {
        for (stage, hw) in [28usize, 14, 7, 4].into_iter().enumerate() {
            let c = width << stage;
            let x = Tensor::randn(&[batch, c, hw, hw], 0.0, 1.0, 1, &dev);
            let w = Tensor::randn(&[c, c, 3, 3], 0.0, 0.05, 2, &dev);
            let dy = Tensor::randn(&[batch, c, hw, hw], 0.0, 1.0, 3, &dev);
            let forward = |a| millis(|| drop(std::hint::black_box(conv2d_cpu_with(&x, &w, p, a))));
            let input_grad = |a| {
                millis(|| {
                    let dx = conv2d_backward_input_cpu_with(&dy, &w, x.shape(), p, a);
                    drop(std::hint::black_box(dx))
                })
            };
            let weight_grad = |a| {
                millis(|| {
                    let dw = conv2d_backward_weight_cpu_with(&dy, &x, w.shape(), p, a);
                    drop(std::hint::black_box(dw))
                })
            };
            let (fi, fw) = (forward(CpuConv::Im2col), forward(CpuConv::Winograd));
            let (bi, bw) = (input_grad(CpuConv::Im2col), input_grad(CpuConv::Winograd));
            let (wi, ww) = (weight_grad(CpuConv::Im2col), weight_grad(CpuConv::Winograd));
            let g = ConvGeometry::new(x.shape(), w.shape(), p, "bench");
            println!(
                "{c:>8} {:>6} | {fi:8.2} {fw:8.2} {:6.2} | {bi:8.2} {bw:8.2} {:6.2} | \
                 {wi:8.2} {ww:8.2} {:6.2} | {:?}",
                format!("{hw}x{hw}"),
                fi / fw,
                bi / bw,
                wi / ww,
                CpuConv::for_layer(&g)
            );
        }
    }
}
