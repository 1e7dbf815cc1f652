//! Parity with PyTorch: the forward ops and the explicit backward ops of the
//! tensor crate against values PyTorch computed (`tests/fixtures/`), on the
//! CPU and, when there is one, the GPU.
//!
//! Tolerances: the fixtures are float32 results of the same sums done in a
//! different order, so values agree to a few units in the last place of
//! their magnitude; we allow an absolute 1e-4 plus a relative 1e-4.

use approx::assert_relative_eq;
use safetensors::SafeTensors;
use tensor::testing::gpu_device;
use tensor::{Conv2dParams, Device, Pool2dParams, Tensor};

const FIXTURE: &[u8] = include_bytes!("fixtures/ops.safetensors");

/// The devices to check: the CPU, and the GPU unless it is missing (and not
/// required).
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(gpu_device());
    d
}

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

/// A fixture tensor on `dev`.
fn load_on(name: &str, dev: &Device) -> Tensor {
    load(name).to_device(dev)
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
    for dev in devices() {
        let cases = [
            ("k3s1p1", 1, 1),
            ("k3s2p1", 2, 1),
            ("k1s2p0", 2, 0),
            ("k7s2p3", 2, 3),
        ];
        for (case, stride, padding) in cases {
            let what = |k: &str| format!("conv2d.{case}.{k} on {dev}");
            let key = |k: &str| format!("conv2d.{case}.{k}");
            let (x, w, gy) = (
                load_on(&key("x"), &dev),
                load_on(&key("w"), &dev),
                load_on(&key("gy"), &dev),
            );
            let p = Conv2dParams::new(stride, padding);
            assert_close(&x.conv2d(&w, p), &load(&key("y")), &what("y"));
            assert_close(
                &gy.conv2d_backward_input(&w, x.shape(), p),
                &load(&key("gx")),
                &what("gx"),
            );
            assert_close(
                &gy.conv2d_backward_weight(&x, w.shape(), p),
                &load(&key("gw")),
                &what("gw"),
            );
        }
    }
}

#[test]
fn max_pool_forward_and_gradient() {
    for dev in devices() {
        let x = load_on("maxpool.k3s2p1.x", &dev);
        let (y, idx) = x.max_pool2d(Pool2dParams::new(3, 2, 1));
        assert_close(
            &y,
            &load("maxpool.k3s2p1.y"),
            &format!("maxpool.y on {dev}"),
        );
        let gx = load_on("maxpool.k3s2p1.gy", &dev).max_pool2d_backward(
            &idx,
            x.shape(),
            Pool2dParams::new(3, 2, 1),
        );
        assert_close(
            &gx,
            &load("maxpool.k3s2p1.gx"),
            &format!("maxpool.gx on {dev}"),
        );
    }
}

#[test]
fn global_average_pool_forward_and_gradient() {
    for dev in devices() {
        let x = load_on("avgpool.global.x", &dev);
        assert_close(
            &x.global_avg_pool2d(),
            &load("avgpool.global.y"),
            &format!("avgpool.y on {dev}"),
        );
        let gx = load_on("avgpool.global.gy", &dev).global_avg_pool2d_backward(x.shape());
        assert_close(
            &gx,
            &load("avgpool.global.gx"),
            &format!("avgpool.gx on {dev}"),
        );
    }
}

/// A linear layer is `y = x·Wᵀ + b`; its gradients are `dx = dy·W`,
/// `dW = dyᵀ·x`, `db = Σ_rows dy`.
#[test]
fn linear_forward_and_gradients() {
    for dev in devices() {
        let l = |k: &str| load_on(&format!("linear.{k}"), &dev);
        let (x, w, b, gy) = (l("x"), l("w"), l("b"), l("gy"));
        let what = |k: &str| format!("linear.{k} on {dev}");
        assert_close(&x.matmul_nt(&w).add(&b), &load("linear.y"), &what("y"));
        assert_close(&gy.matmul(&w), &load("linear.gx"), &what("gx"));
        assert_close(&gy.matmul_tn(&x), &load("linear.gw"), &what("gw"));
        assert_close(&gy.sum(&[0], false), &load("linear.gb"), &what("gb"));
    }
}

/// Batch-norm forward in training mode (batch statistics, and the running
/// statistics updated with momentum 0.1 from the unbiased variance) and in
/// evaluation mode (running statistics).
#[test]
fn batch_norm_forward_and_running_statistics() {
    for dev in devices() {
        for case in ["bn2d.train", "bn1d.train", "bn2d.eval"] {
            let key = |k: &str| load_on(&format!("{case}.{k}"), &dev);
            let want = |k: &str| load(&format!("{case}.{k}"));
            let what = |k: &str| format!("{case}.{k} on {dev}");
            let x = key("x");
            let (w, b) = (key("before.weight"), key("before.bias"));
            let (rm, rv) = (key("before.running_mean"), key("before.running_var"));
            if case.ends_with("train") {
                let (mean, var) = x.channel_stats();
                assert_close(
                    &x.normalize_scale_shift(&mean, &var, &w, &b, 1e-5),
                    &want("y"),
                    &what("y"),
                );
                let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
                let unbiased = x.var(&axes, true, false);
                let new_rm = rm.mul_scalar(0.9).add(&mean.mul_scalar(0.1));
                let new_rv = rv.mul_scalar(0.9).add(&unbiased.mul_scalar(0.1));
                assert_close(
                    &new_rm,
                    &want("after.running_mean"),
                    &what("after.running_mean"),
                );
                assert_close(
                    &new_rv,
                    &want("after.running_var"),
                    &what("after.running_var"),
                );
            } else {
                assert_close(
                    &x.normalize_scale_shift(&rm, &rv, &w, &b, 1e-5),
                    &want("y"),
                    &what("y"),
                );
                assert_close(
                    &rm,
                    &want("after.running_mean"),
                    &what("after.running_mean"),
                );
            }
        }
    }
}

/// Cross-entropy from log-softmax: `loss = -mean_i log_softmax(z_i)[y_i]`,
/// and its known gradient `(softmax(z) - onehot(y)) / N`.
#[test]
fn cross_entropy_from_log_softmax() {
    for dev in devices() {
        let logits = load_on("cross_entropy.logits", &dev);
        let labels: Vec<usize> = load("cross_entropy.labels")
            .to_vec()
            .iter()
            .map(|&l| l as usize)
            .collect();
        let n = labels.len();
        let onehot = Tensor::one_hot(&labels, logits.dim(1), &dev);
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
            &format!("cross_entropy.glogits on {dev}"),
        );
    }
}
