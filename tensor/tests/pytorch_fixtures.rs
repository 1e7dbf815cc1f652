//! Parity with PyTorch: the forward ops and the explicit backward ops of the
//! tensor crate against values PyTorch computed (`tests/fixtures/`).
//!
//! Tolerances: the fixtures are float32 results of the same sums done in a
//! different order, so values agree to a few units in the last place of
//! their magnitude; we allow an absolute 1e-4 plus a relative 1e-4.

use approx::assert_relative_eq;
use safetensors::SafeTensors;
use tensor::{Conv2dParams, Device, Pool2dParams, Tensor};

const FIXTURE: &[u8] = include_bytes!("fixtures/ops.safetensors");

fn load(name: &str) -> Tensor {
    let st = SafeTensors::deserialize(FIXTURE).expect("the fixture file is valid safetensors");
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture key {name}: {e}"));
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_vec(data, view.shape(), &Device::Cpu)
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            approx::relative_eq!(*g, w, epsilon = 1e-4, max_relative = 1e-4),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

#[test]
fn conv2d_forward_and_gradients() {
    for (case, stride, padding) in [
        ("k3s1p1", 1, 1),
        ("k3s2p1", 2, 1),
        ("k1s2p0", 2, 0),
        ("k7s2p3", 2, 3),
    ] {
        let key = |k: &str| load(&format!("conv2d.{case}.{k}"));
        let (x, w, gy) = (key("x"), key("w"), key("gy"));
        let p = Conv2dParams::new(stride, padding);
        assert_close(&x.conv2d(&w, p), &key("y"), &format!("conv2d.{case}.y"));
        assert_close(
            &gy.conv2d_backward_input(&w, x.shape(), p),
            &key("gx"),
            &format!("conv2d.{case}.gx"),
        );
        assert_close(
            &gy.conv2d_backward_weight(&x, w.shape(), p),
            &key("gw"),
            &format!("conv2d.{case}.gw"),
        );
    }
}

#[test]
fn max_pool_forward_and_gradient() {
    let x = load("maxpool.k3s2p1.x");
    let (y, idx) = x.max_pool2d(Pool2dParams::new(3, 2, 1));
    assert_close(&y, &load("maxpool.k3s2p1.y"), "maxpool.y");
    let gx = load("maxpool.k3s2p1.gy").max_pool2d_backward(&idx, x.shape());
    assert_close(&gx, &load("maxpool.k3s2p1.gx"), "maxpool.gx");
}

#[test]
fn global_average_pool_forward_and_gradient() {
    let x = load("avgpool.global.x");
    assert_close(
        &x.global_avg_pool2d(),
        &load("avgpool.global.y"),
        "avgpool.y",
    );
    let gx = load("avgpool.global.gy").global_avg_pool2d_backward(x.shape());
    assert_close(&gx, &load("avgpool.global.gx"), "avgpool.gx");
}

/// A linear layer is `y = x·Wᵀ + b`; its gradients are `dx = dy·W`,
/// `dW = dyᵀ·x`, `db = Σ_rows dy`.
#[test]
fn linear_forward_and_gradients() {
    let (x, w, b, gy) = (
        load("linear.x"),
        load("linear.w"),
        load("linear.b"),
        load("linear.gy"),
    );
    assert_close(&x.matmul_nt(&w).add(&b), &load("linear.y"), "linear.y");
    assert_close(&gy.matmul(&w), &load("linear.gx"), "linear.gx");
    assert_close(&gy.matmul_tn(&x), &load("linear.gw"), "linear.gw");
    assert_close(&gy.sum(&[0], false), &load("linear.gb"), "linear.gb");
}

/// Batch-norm forward in training mode (batch statistics, and the running
/// statistics updated with momentum 0.1 from the unbiased variance) and in
/// evaluation mode (running statistics).
#[test]
fn batch_norm_forward_and_running_statistics() {
    for case in ["bn2d.train", "bn1d.train", "bn2d.eval"] {
        let key = |k: &str| load(&format!("{case}.{k}"));
        let x = key("x");
        let (w, b) = (key("before.weight"), key("before.bias"));
        let (rm, rv) = (key("before.running_mean"), key("before.running_var"));
        if case.ends_with("train") {
            let (mean, var) = x.channel_stats();
            assert_close(
                &x.normalize_scale_shift(&mean, &var, &w, &b, 1e-5),
                &key("y"),
                &format!("{case}.y"),
            );
            let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
            let unbiased = x.var(&axes, true, false);
            let new_rm = rm.mul_scalar(0.9).add(&mean.mul_scalar(0.1));
            let new_rv = rv.mul_scalar(0.9).add(&unbiased.mul_scalar(0.1));
            assert_close(
                &new_rm,
                &key("after.running_mean"),
                &format!("{case}.after.running_mean"),
            );
            assert_close(
                &new_rv,
                &key("after.running_var"),
                &format!("{case}.after.running_var"),
            );
        } else {
            assert_close(
                &x.normalize_scale_shift(&rm, &rv, &w, &b, 1e-5),
                &key("y"),
                &format!("{case}.y"),
            );
            assert_close(&rm, &key("after.running_mean"), "eval leaves running_mean");
        }
    }
}

/// Cross-entropy from log-softmax: `loss = -mean_i log_softmax(z_i)[y_i]`,
/// and its known gradient `(softmax(z) - onehot(y)) / N`.
#[test]
fn cross_entropy_from_log_softmax() {
    let logits = load("cross_entropy.logits");
    let labels: Vec<usize> = load("cross_entropy.labels")
        .to_vec()
        .iter()
        .map(|&l| l as usize)
        .collect();
    let n = labels.len();
    let onehot = Tensor::one_hot(&labels, logits.dim(1), &Device::Cpu);
    let loss = logits
        .log_softmax()
        .mul(&onehot)
        .sum_all()
        .neg()
        .div_scalar(n as f32);
    assert_relative_eq!(
        loss.item(),
        load("cross_entropy.loss").item(),
        max_relative = 1e-5
    );
    let grad = logits.softmax().sub(&onehot).div_scalar(n as f32);
    assert_close(
        &grad,
        &load("cross_entropy.glogits"),
        "cross_entropy.glogits",
    );
}
