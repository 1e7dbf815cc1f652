//! The convolutions of a ResNet-18 on 28x28 images, layer by layer, with
//! im2col + GEMM, Winograd F(2x2, 3x3), the packed implicit GEMM,
//! Winograd F(4x4, 3x3) on its kernels (`w4x4`; the last two need AVX2 or
//! AVX-512) and the direct convolution (`dir`, AVX-512) side by side: the 3x3 stride-1 layers, then the stride-2
//! transitions (3x3, and the 1x1 shortcut): the measurement behind
//! [`tensor::ops::conv2d::CpuConv::for_layer`].
//!
//! Run: `cargo bench -p tensor --bench conv_layers` (all threads;
//! `-- --batch N` and `-- --width W` pick one batch size or base width,
//! default batch 256 at widths 16 and 64). Each figure is the fastest
//! single call, in milliseconds, of one row's calls timed in turn, round
//! after round (`common::millis_side_by_side`: a slow spell of a shared
//! machine falls on every column of the row alike), for
//! the forward pass, the input gradient and the weight gradient (`fwd dir`,
//! `dx dir` and `dw dir`: the direct kernel and the weight gradient read
//! from the padded image, on AVX-512 for channels in sixteens;
//! freed memory kept for reuse, as the `byol` command runs). `chosen`
//! is what the library picks for the layer (and for its weight gradient,
//! where that differs).

mod common;

use common::millis_side_by_side;
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

/// [`millis_side_by_side`] over boxed calls.
fn side_by_side(calls: &mut [Box<dyn FnMut() + '_>]) -> Vec<f64> {
    let mut refs: Vec<&mut dyn FnMut()> = calls.iter_mut().map(|c| &mut **c as _).collect();
    millis_side_by_side(&mut refs)
}

/// What the library picks for the layer, with the weight gradient's
/// choice where it differs.
fn chosen(g: &ConvGeometry) -> String {
    let (all, dw) = (CpuConv::for_layer(g), CpuConv::for_weight_gradient(g));
    if all == dw {
        format!("{all:?}")
    } else {
        format!("{all:?} (dw {dw:?})")
    }
}

fn main() {
    // As the `byol` command and the step benchmarks run: freed buffers stay
    // in the allocator, so an output is not fresh pages faulted in on
    // every call.
    tensor::reuse_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let batch = option(&args, "--batch").unwrap_or(256);
    let widths = option(&args, "--width").map_or(vec![16, 64], |w| vec![w]);
    let dev = Device::Cpu;
    let p = Conv2dParams::new(1, 1);
    let packed = tensor::ops::conv2d::packed::available();
    let cell = |t: Option<f64>| t.map_or(format!("{:>8}", "-"), |t| format!("{t:8.2}"));
    println!(
        "3x3 stride-1 layers of a ResNet-18 on 28x28, batch {batch}, {} threads (ms per call; \
         packed needs AVX2 or AVX-512{})",
        rayon::current_num_threads(),
        if packed { "" } else { ", which this CPU lacks" }
    );
    println!(
        "{:>8} {:>6} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>8} | chosen",
        "channels",
        "plane",
        "fwd i2c",
        "fwd wino",
        "fwd pack",
        "fwd w4x4",
        "fwd dir",
        "dx i2c",
        "dx wino",
        "dx pack",
        "dx w4x4",
        "dx dir",
        "dw i2c",
        "dw wino",
        "dw pack",
        "dw w4x4",
        "dw dir"
    );
    for &width in &widths {
        for (stage, hw) in [28usize, 14, 7, 4].into_iter().enumerate() {
            let c = width << stage;
            let x = Tensor::randn(&[batch, c, hw, hw], 0.0, 1.0, 1, &dev);
            let w = Tensor::randn(&[c, c, 3, 3], 0.0, 0.05, 2, &dev);
            let dy = Tensor::randn(&[batch, c, hw, hw], 0.0, 1.0, 3, &dev);
            let all = [
                CpuConv::Im2col,
                CpuConv::Winograd,
                CpuConv::Packed,
                CpuConv::Winograd4,
            ];
            let algorithms = &all[..if packed { 4 } else { 2 }];
            let mut calls: Vec<Box<dyn FnMut()>> = Vec::new();
            for &a in algorithms {
                let (x, w) = (&x, &w);
                calls.push(Box::new(move || {
                    drop(std::hint::black_box(conv2d_cpu_with(x, w, p, a)))
                }));
            }
            for &a in algorithms {
                let (x, w, dy) = (&x, &w, &dy);
                calls.push(Box::new(move || {
                    let dx = conv2d_backward_input_cpu_with(dy, w, x.shape(), p, a);
                    drop(std::hint::black_box(dx))
                }));
            }
            for &a in algorithms {
                let (x, w, dy) = (&x, &w, &dy);
                calls.push(Box::new(move || {
                    let dw = conv2d_backward_weight_cpu_with(dy, x, w.shape(), p, a);
                    drop(std::hint::black_box(dw))
                }));
            }
            // The direct kernel (AVX-512, channels in sixteens): forward
            // and input gradient, timed in the same rounds.
            let g = ConvGeometry::new(x.shape(), w.shape(), p, "bench");
            let direct = tensor::ops::conv2d::direct::applies(&g);
            if direct {
                let (x, w, dy) = (&x, &w, &dy);
                calls.push(Box::new(move || {
                    drop(std::hint::black_box(conv2d_cpu_with(
                        x,
                        w,
                        p,
                        CpuConv::Direct,
                    )))
                }));
                calls.push(Box::new(move || {
                    let dx = conv2d_backward_input_cpu_with(dy, w, x.shape(), p, CpuConv::Direct);
                    drop(std::hint::black_box(dx))
                }));
                calls.push(Box::new(move || {
                    let dw = conv2d_backward_weight_cpu_with(dy, x, w.shape(), p, CpuConv::Direct);
                    drop(std::hint::black_box(dw))
                }));
            }
            let t = side_by_side(&mut calls);
            let n = algorithms.len();
            let (fd, bd, wd) = (
                direct.then(|| t[3 * n]),
                direct.then(|| t[3 * n + 1]),
                direct.then(|| t[3 * n + 2]),
            );
            let (fi, fw, fp, f4) = (t[0], t[1], packed.then(|| t[2]), packed.then(|| t[3]));
            let (bi, bw, bp, b4) = (
                t[n],
                t[n + 1],
                packed.then(|| t[n + 2]),
                packed.then(|| t[n + 3]),
            );
            let (wi, ww, wp, w4) = (
                t[2 * n],
                t[2 * n + 1],
                packed.then(|| t[2 * n + 2]),
                packed.then(|| t[2 * n + 3]),
            );
            println!(
                "{c:>8} {:>6} | {fi:8.2} {fw:8.2} {} {} {} | {bi:8.2} {bw:8.2} {} {} {} | {wi:8.2} {ww:8.2} {} {} {} | {:?}",
                format!("{hw}x{hw}"),
                cell(fp),
                cell(f4),
                cell(fd),
                cell(bp),
                cell(b4),
                cell(bd),
                cell(wp),
                cell(w4),
                cell(wd),
                chosen(&g)
            );
        }
    }
    // The stage transitions: 3x3 stride 2 from C channels on a plane twice
    // as large to 2C, and the 1x1 stride-2 shortcut beside it (Winograd
    // does not apply).
    println!("stride-2 layers (input plane, channels in -> out), forward and both gradients");
    println!(
        "{:>16} {:>6} | {:>8} {:>8} {:>8} | {:>8} | {:>8} {:>8} | chosen",
        "layer", "plane", "fwd i2c", "fwd pack", "fwd dir", "dx i2c", "dw i2c", "dw pack"
    );
    for &width in &widths {
        for ((stage, hw), k) in [28usize, 14, 7]
            .into_iter()
            .enumerate()
            .flat_map(|s| [(s, 3), (s, 1)])
        {
            let c = width << stage;
            let p2 = Conv2dParams::new(2, k / 2);
            let x = Tensor::randn(&[batch, c, hw, hw], 0.0, 1.0, 1, &dev);
            let w = Tensor::randn(&[2 * c, c, k, k], 0.0, 0.05, 2, &dev);
            let g = ConvGeometry::new(x.shape(), w.shape(), p2, "bench");
            let dy = Tensor::randn(&[batch, 2 * c, g.oh, g.ow], 0.0, 1.0, 3, &dev);
            let mut calls: Vec<Box<dyn FnMut()>> = vec![
                Box::new(|| {
                    drop(std::hint::black_box(conv2d_cpu_with(
                        &x,
                        &w,
                        p2,
                        CpuConv::Im2col,
                    )))
                }),
                Box::new(|| {
                    let dx =
                        conv2d_backward_input_cpu_with(&dy, &w, x.shape(), p2, CpuConv::Im2col);
                    drop(std::hint::black_box(dx))
                }),
                Box::new(|| {
                    let dw =
                        conv2d_backward_weight_cpu_with(&dy, &x, w.shape(), p2, CpuConv::Im2col);
                    drop(std::hint::black_box(dw))
                }),
            ];
            if packed {
                calls.push(Box::new(|| {
                    drop(std::hint::black_box(conv2d_cpu_with(
                        &x,
                        &w,
                        p2,
                        CpuConv::Packed,
                    )))
                }));
                calls.push(Box::new(|| {
                    let dw =
                        conv2d_backward_weight_cpu_with(&dy, &x, w.shape(), p2, CpuConv::Packed);
                    drop(std::hint::black_box(dw))
                }));
            }
            let direct = tensor::ops::conv2d::direct::applies(&g);
            if direct {
                calls.push(Box::new(|| {
                    drop(std::hint::black_box(conv2d_cpu_with(
                        &x,
                        &w,
                        p2,
                        CpuConv::Direct,
                    )))
                }));
            }
            let t = side_by_side(&mut calls);
            let (fi, bi, wi) = (t[0], t[1], t[2]);
            let (fp, wp) = (packed.then(|| t[3]), packed.then(|| t[4]));
            let fd = direct.then(|| t[t.len() - 1]);
            println!(
                "{:>16} {:>6} | {fi:8.2} {} {} | {bi:8.2} | {wi:8.2} {} | {:?}",
                format!("{k}x{k} {c} -> {}", 2 * c),
                format!("{hw}x{hw}"),
                cell(fp),
                cell(fd),
                cell(wp),
                chosen(&g)
            );
        }
    }
}
