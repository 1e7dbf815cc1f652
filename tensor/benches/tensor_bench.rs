//! The tensor crate's speed figures: f32 GEMM GFLOP/s at n = 256, 512, 1024
//! and a 3x3 convolution (64 -> 64 channels, batch 128, 32x32, padding 1),
//! forward and forward + both backward ops.
//!
//! Run: `cargo bench -p tensor` on the CPU (all threads; `RAYON_NUM_THREADS`
//! sets the count), `cargo bench -p tensor -- --device gpu` on the GPU
//! (`BYOL_DEVICE` works too). On the GPU each timed repetition ends by
//! waiting for the device, and the per-dispatch overhead is printed too: the
//! time of 1000 tiny elementwise ops with one readback at the end. Each figure is the median of three timings, each repeating the op
//! for at least one second after a warm-up, the method of the PyTorch
//! reference scripts, so the numbers compare side by side. For the GEMM the
//! same products through ndarray's default `matrixmultiply` are printed too:
//! the measurement behind choosing the `gemm` crate. `-- --gemm` prints
//! only our GEMM rows (no ndarray, no convolution): the quick figure
//! `scripts/cpu-compare.sh` sets beside numpy's.
//!
//! FLOPs: a GEMM is `2 n³`; the convolution forward `2·N·O·OH·OW·C·9`, and
//! forward + backward three times that (the input and weight gradients each
//! cost one forward).

use std::time::Instant;
use tensor::{Conv2dParams, Device, Tensor};

const MIN_SECONDS: f64 = 1.0;

/// Median GFLOP/s over three timed runs of `f` (each run waits for the
/// device at the end of every repetition).
fn rate(dev: &Device, flops: f64, mut f: impl FnMut()) -> f64 {
    let mut f = || {
        f();
        dev.synchronize();
    };
    for _ in 0..3 {
        f();
    }
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut iters = 0u32;
            loop {
                f();
                iters += 1;
                let dt = start.elapsed().as_secs_f64();
                if dt >= MIN_SECONDS {
                    return flops * iters as f64 / dt / 1e9;
                }
            }
        })
        .collect();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[1]
}

fn main() {
    // `cargo bench` passes `--bench`; the options read are `--device` and
    // `--gemm`.
    let args: Vec<String> = std::env::args().collect();
    let gemm_only = args.iter().any(|a| a == "--gemm");
    let name = match args.iter().position(|a| a == "--device") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => std::env::var("BYOL_DEVICE").unwrap_or_else(|_| "cpu".into()),
    };
    let dev = Device::from_name(&name).unwrap_or_else(|e| {
        eprintln!("tensor benchmark: {e}");
        std::process::exit(2);
    });
    let threads = rayon::current_num_threads();
    println!(
        "tensor benchmark: {}, {threads} rayon threads",
        dev.describe()
    );
    let mut json = Vec::new();
    for n in [256usize, 512, 1024] {
        let a = Tensor::rand_uniform(&[n, n], 0.0, 1.0, 1, &dev);
        let b = Tensor::rand_uniform(&[n, n], 0.0, 1.0, 2, &dev);
        let flops = 2.0 * (n * n * n) as f64;
        let ours = rate(&dev, flops, || {
            std::hint::black_box(a.matmul(&b));
        });
        if dev.is_gpu() || gemm_only {
            println!("f32 GEMM n={n:5}: {ours:7.1} GFLOP/s");
            json.push(format!("\"gemm_n{n}\": {ours:.1}"));
            continue;
        }
        let (an, bn) = (a.to_ndarray(), b.to_ndarray());
        let (an, bn) = (
            an.into_dimensionality::<ndarray::Ix2>().unwrap(),
            bn.into_dimensionality::<ndarray::Ix2>().unwrap(),
        );
        let nd = rate(&dev, flops, || {
            std::hint::black_box(an.dot(&bn));
        });
        println!("f32 GEMM n={n:5}: {ours:7.1} GFLOP/s   (ndarray matrixmultiply: {nd:6.1})");
        json.push(format!(
            "\"gemm_n{n}\": {ours:.1}, \"gemm_ndarray_n{n}\": {nd:.1}"
        ));
    }

    if gemm_only {
        println!(
            "RESULT {{\"device\": \"{}\", \"threads\": {threads}, {}}}",
            dev.describe(),
            json.join(", ")
        );
        return;
    }
    let (n, c, hw) = (128usize, 64usize, 32usize);
    let x = Tensor::randn(&[n, c, hw, hw], 0.0, 1.0, 3, &dev);
    let w = Tensor::randn(&[c, c, 3, 3], 0.0, 0.05, 4, &dev);
    let gy = Tensor::randn(&[n, c, hw, hw], 0.0, 1.0, 5, &dev);
    let p = Conv2dParams::new(1, 1);
    let fwd_flops = 2.0 * (n * c * hw * hw * c * 9) as f64;
    let fwd = rate(&dev, fwd_flops, || {
        std::hint::black_box(x.conv2d(&w, p));
    });
    println!(
        "conv2d 3x3 64->64, batch 128, 32x32, pad 1, forward:         {fwd:7.1} GFLOP/s = {:.1} ms",
        fwd_flops / fwd / 1e6
    );
    let bwd_in = rate(&dev, fwd_flops, || {
        std::hint::black_box(gy.conv2d_backward_input(&w, x.shape(), p));
    });
    let bwd_w = rate(&dev, fwd_flops, || {
        std::hint::black_box(gy.conv2d_backward_weight(&x, w.shape(), p));
    });
    println!(
        "  of which backward input: {bwd_in:7.1} GFLOP/s, backward weight: {bwd_w:7.1} GFLOP/s"
    );
    let both = rate(&dev, 3.0 * fwd_flops, || {
        std::hint::black_box(x.conv2d(&w, p));
        std::hint::black_box(gy.conv2d_backward_input(&w, x.shape(), p));
        std::hint::black_box(gy.conv2d_backward_weight(&x, w.shape(), p));
    });
    println!(
        "conv2d 3x3 64->64, batch 128, 32x32, pad 1, forward+backward: {both:7.1} GFLOP/s = {:.1} ms",
        3.0 * fwd_flops / both / 1e6
    );
    json.push(format!(
        "\"conv_fwd_gflops\": {fwd:.1}, \"conv_fwdbwd_gflops\": {both:.1}"
    ));
    if dev.is_gpu() {
        // Per-dispatch overhead: 1000 tiny ops, one readback at the end.
        let t = Tensor::zeros(&[7], &dev);
        t.to_vec();
        let mut per_op = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let mut x = t.clone();
            for _ in 0..1000 {
                x = x.add_scalar(1.0);
            }
            x.to_vec();
            per_op.push(start.elapsed().as_secs_f64() / 1000.0 * 1e6);
        }
        per_op.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "dispatch overhead: {:.1} us per tiny op (1000 ops, one readback)",
            per_op[1]
        );
        json.push(format!("\"dispatch_us\": {:.1}", per_op[1]));
    }
    println!(
        "RESULT {{\"device\": \"{}\", \"threads\": {threads}, {}}}",
        dev.describe(),
        json.join(", ")
    );
}
