//! Tensors on the CPU and the GPU: one matrix product and one convolution,
//! computed on both devices, with the largest difference between the two
//! results printed.
//!
//! ```text
//! cargo run --release -p tensor --example cpu_and_gpu
//! ```
//!
//! Without a GPU adapter (`Device::gpu()` returns an error) it says so, runs
//! the CPU half alone and still exits with success. Mesa's software Vulkan
//! driver (`mesa-vulkan-drivers` on Debian) counts as an adapter.

use tensor::{Conv2dParams, Device, Tensor};

/// The largest `|a - b|` over two tensors of the same shape, read back to
/// the host.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_vec(), b.to_vec());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The largest `|x|` of a tensor, to put a difference in proportion.
fn max_abs(t: &Tensor) -> f32 {
    t.to_vec().iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// `a · b` by the textbook triple loop, for `a` `[m, k]` and `b` `[k, n]`.
fn matmul_reference(a: &Tensor, b: &Tensor) -> Tensor {
    let (m, k, n) = (a.dim(0), a.dim(1), b.dim(1));
    let (av, bv) = (a.to_vec(), b.to_vec());
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += av[i * k + p] * bv[p * n + j];
            }
            out[i * n + j] = s;
        }
    }
    Tensor::from_vec(out, &[m, n], &Device::Cpu)
}

fn main() {
    let cpu = Device::cpu();
    println!("Device: {}", cpu.describe());

    // Odd sizes on purpose: kernels must handle edges, not only multiples
    // of their tile size.
    let a = Tensor::randn(&[65, 33], 0.0, 1.0, 1, &cpu);
    let b = Tensor::randn(&[33, 17], 0.0, 1.0, 2, &cpu);
    let c_cpu = a.matmul(&b);
    println!(
        "matmul [65, 33] x [33, 17] -> {:?} on the CPU; vs a plain triple loop: max |diff| = {:.2e}",
        c_cpu.shape(),
        max_abs_diff(&c_cpu, &matmul_reference(&a, &b))
    );

    // A batch of 2 images, 3 channels, 9x11, convolved with 4 filters of
    // 3x3, stride 2, padding 1: output [2, 4, 5, 6].
    let x = Tensor::randn(&[2, 3, 9, 11], 0.0, 1.0, 3, &cpu);
    let w = Tensor::randn(&[4, 3, 3, 3], 0.0, 0.5, 4, &cpu);
    let params = Conv2dParams::new(2, 1);
    let y_cpu = x.conv2d(&w, params);
    println!(
        "conv2d [2, 3, 9, 11] * [4, 3, 3, 3], stride 2, padding 1 -> {:?} on the CPU",
        y_cpu.shape()
    );

    let gpu = match Device::gpu() {
        Ok(gpu) => gpu,
        Err(e) => {
            println!();
            println!("The GPU half is skipped, as there is no usable GPU: {e}");
            println!("The CPU half above ran normally.");
            return;
        }
    };
    println!();
    println!("Device: {}", gpu.describe());

    // `to_device` copies the data; the ops then run as WGSL compute shaders.
    // Nothing waits for the GPU until `to_vec` reads a result back.
    let c_gpu = a.to_device(&gpu).matmul(&b.to_device(&gpu));
    println!(
        "matmul on the GPU -> {:?}; GPU vs CPU: max |diff| = {:.2e} (largest value {:.2})",
        c_gpu.shape(),
        max_abs_diff(&c_gpu, &c_cpu),
        max_abs(&c_cpu)
    );
    let y_gpu = x.to_device(&gpu).conv2d(&w.to_device(&gpu), params);
    println!(
        "conv2d on the GPU -> {:?}; GPU vs CPU: max |diff| = {:.2e} (largest value {:.2})",
        y_gpu.shape(),
        max_abs_diff(&y_gpu, &y_cpu),
        max_abs(&y_cpu)
    );

    // A tensor can come back the other way too; ops need both inputs on
    // one device, so mixing devices in one op is a panic that names them.
    let back = y_gpu.to_device(&cpu);
    println!(
        "moved back to the {}: {} values, first three {:?}",
        back.device(),
        back.numel(),
        &back.to_vec()[..3]
    );
    println!();
    println!("The two devices add the same products in different orders, so f32 results agree");
    println!("to a few units in the last place of their magnitude, not bit for bit.");
}
