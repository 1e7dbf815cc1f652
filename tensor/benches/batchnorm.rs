//! Batch norm on the CPU at the shapes of a BYOL step with a ResNet-18 of
//! width 16 on 28x28 images (batch 256): the four stages' feature maps and
//! the `[2·256, 4096]` hidden layer of the projector and predictor.
//!
//! Run: `cargo bench -p tensor --bench batchnorm` (all threads; `-- --batch
//! N` for another batch size). Each figure is the fastest of five timings of
//! at least 0.3 s, in milliseconds per call: the batch statistics
//! (`channel_stats`), the normalisation with ReLU, and the backward pass
//! (`batch_norm_backward`).

mod common;

use common::millis;
use tensor::{Device, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1))
        .map_or(256, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("batchnorm: --batch {v:?} is not a whole number");
                std::process::exit(2)
            })
        });
    // As the `byol` command does: freed buffers are reused, not handed
    // back to the kernel and faulted in again on the next call.
    tensor::reuse_freed_memory();
    let dev = Device::Cpu;
    println!(
        "batch norm, batch {batch}, {} threads (ms per call)",
        rayon::current_num_threads()
    );
    println!(
        "{:>18} | {:>8} {:>10} {:>9}",
        "shape", "stats", "norm+relu", "backward"
    );
    let shapes: [Vec<usize>; 5] = [
        vec![batch, 16, 28, 28],
        vec![batch, 32, 14, 14],
        vec![batch, 64, 7, 7],
        vec![batch, 128, 4, 4],
        vec![2 * batch, 4096],
    ];
    let mut totals = [0.0f64; 3];
    for shape in shapes {
        let c = shape[1];
        let x = Tensor::randn(&shape, 0.5, 2.0, 1, &dev);
        let dy = Tensor::randn(&shape, 0.0, 1.0, 2, &dev);
        let w = Tensor::randn(&[c], 1.0, 0.1, 3, &dev);
        let b = Tensor::randn(&[c], 0.0, 0.1, 4, &dev);
        let (mean, var) = x.channel_stats();
        let inv_std = var.add_scalar(1e-5).rsqrt();
        let stats = millis(|| drop(x.channel_stats()));
        let norm = millis(|| drop(x.normalize_scale_shift_relu(&mean, &var, &w, &b, 1e-5)));
        let back = millis(|| drop(dy.batch_norm_backward(&x, &mean, &inv_std, &w)));
        for (t, v) in totals.iter_mut().zip([stats, norm, back]) {
            *t += v;
        }
        println!(
            "{:>18} | {stats:8.3} {norm:10.3} {back:9.3}",
            format!("{shape:?}")
        );
    }
    println!(
        "{:>18} | {:8.3} {:10.3} {:9.3}",
        "sum", totals[0], totals[1], totals[2]
    );
}
