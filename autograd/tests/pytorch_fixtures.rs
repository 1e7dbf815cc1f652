//! Parity with PyTorch: gradients computed through the tape against the
//! values PyTorch's autograd computed (`tests/fixtures/ops.safetensors`, see
//! the README there), on every device in [`devices`].
//!
//! A fixture gives the gradient `gy` arriving at an op's output; the test
//! records `loss = Σ y · gy` after the op, so that exactly `gy` reaches the
//! op in the backward walk, and compares what reaches the inputs.
//!
//! Tolerance: `1e-4 + 1e-4·|PyTorch|` elementwise, for values and gradients
//! alike (the tensor crate's: the same float32 sums in a different order).

mod common;

use autograd::{Param, Tape, Var};
use common::{assert_close, devices};
use safetensors::SafeTensors;
use tensor::{Conv2dParams, Device, Pool2dParams, Tensor};

const FIXTURE: &[u8] = include_bytes!("fixtures/ops.safetensors");
const TOL: (f32, f32) = (1e-4, 1e-4);

/// A fixture tensor on `dev`.
fn load(name: &str, dev: &Device) -> Tensor {
    let st = SafeTensors::deserialize(FIXTURE).expect("the fixture file is valid safetensors");
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture key {name}: {e}"));
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_vec(data, view.shape(), dev)
}

fn close(got: &Tensor, want: &Tensor, what: &str) {
    assert_close(got, want, TOL.0, TOL.1, what);
}

/// `Σ y · gy`: the loss whose gradient at `y` is `gy`.
fn apply(y: &Var, gy: Tensor) -> Var {
    y.mul(&Var::constant(gy)).sum_all()
}

#[test]
fn conv2d_gradients() {
    for dev in devices() {
        for (case, stride, padding) in [
            ("k3s1p1", 1, 1),
            ("k3s2p1", 2, 1),
            ("k1s2p0", 2, 0),
            ("k7s2p3", 2, 3),
        ] {
            let key = |k: &str| load(&format!("conv2d.{case}.{k}"), &dev);
            let what = |k: &str| format!("conv2d.{case}.{k} on {dev}");
            let tape = Tape::new();
            let x = tape.leaf(key("x"));
            let w = Param::new("w", key("w"));
            let y = x.conv2d(&tape.param(&w), Conv2dParams::new(stride, padding));
            close(y.value(), &key("y"), &what("y"));
            let grads = tape.backward(&apply(&y, key("gy")));
            close(grads.get(&x).unwrap(), &key("gx"), &what("gx"));
            close(&w.grad().unwrap(), &key("gw"), &what("gw"));
        }
    }
}

#[test]
fn batch_norm_training_gradients_and_statistics() {
    for dev in devices() {
        for case in ["bn2d.train", "bn1d.train"] {
            let key = |k: &str| load(&format!("{case}.{k}"), &dev);
            let what = |k: &str| format!("{case}.{k} on {dev}");
            let weight = Param::new("weight", key("before.weight"));
            let bias = Param::new("bias", key("before.bias"));
            let tape = Tape::new();
            let x = tape.leaf(key("x"));
            let out = x.batch_norm_train(&tape.param(&weight), &tape.param(&bias), 1e-5);
            close(out.y.value(), &key("y"), &what("y"));

            // The running statistics a layer would keep (momentum 0.1, the
            // unbiased variance), from the returned batch statistics.
            let running =
                |before: Tensor, batch: &Tensor| before.mul_scalar(0.9).add(&batch.mul_scalar(0.1));
            let mean = running(key("before.running_mean"), &out.mean);
            let var = running(key("before.running_var"), &out.unbiased_var());
            close(
                &mean,
                &key("after.running_mean"),
                &what("after.running_mean"),
            );
            close(&var, &key("after.running_var"), &what("after.running_var"));

            let grads = tape.backward(&apply(&out.y, key("gy")));
            close(grads.get(&x).unwrap(), &key("gx"), &what("gx"));
            close(&weight.grad().unwrap(), &key("gweight"), &what("gweight"));
            close(&bias.grad().unwrap(), &key("gbias"), &what("gbias"));
        }
    }
}

#[test]
fn batch_norm_eval_gradients_through_running_statistics() {
    for dev in devices() {
        let key = |k: &str| load(&format!("bn2d.eval.{k}"), &dev);
        let what = |k: &str| format!("bn2d.eval.{k} on {dev}");
        let (rm, rv) = (key("before.running_mean"), key("before.running_var"));
        let weight = Param::new("weight", key("before.weight"));
        let bias = Param::new("bias", key("before.bias"));
        let tape = Tape::new();
        let x = tape.leaf(key("x"));
        let y = x.batch_norm_eval(&tape.param(&weight), &tape.param(&bias), &rm, &rv, 1e-5);
        close(y.value(), &key("y"), &what("y"));
        // Evaluation leaves the running statistics as they were.
        close(&rm, &key("after.running_mean"), &what("after.running_mean"));
        close(&rv, &key("after.running_var"), &what("after.running_var"));
        let grads = tape.backward(&apply(&y, key("gy")));
        close(grads.get(&x).unwrap(), &key("gx"), &what("gx"));
        close(&weight.grad().unwrap(), &key("gweight"), &what("gweight"));
        close(&bias.grad().unwrap(), &key("gbias"), &what("gbias"));
    }
}

#[test]
fn linear_gradients() {
    for dev in devices() {
        let key = |k: &str| load(&format!("linear.{k}"), &dev);
        let what = |k: &str| format!("linear.{k} on {dev}");
        let (w, b) = (Param::new("w", key("w")), Param::new("b", key("b")));
        let tape = Tape::new();
        let x = tape.leaf(key("x"));
        let y = x.linear(&tape.param(&w), Some(&tape.param(&b)));
        close(y.value(), &key("y"), &what("y"));
        let grads = tape.backward(&apply(&y, key("gy")));
        close(grads.get(&x).unwrap(), &key("gx"), &what("gx"));
        close(&w.grad().unwrap(), &key("gw"), &what("gw"));
        close(&b.grad().unwrap(), &key("gb"), &what("gb"));
    }
}

#[test]
fn pooling_gradients() {
    for dev in devices() {
        let key = |k: &str| load(k, &dev);
        let tape = Tape::new();
        let x = tape.leaf(key("maxpool.k3s2p1.x"));
        let y = x.max_pool2d(Pool2dParams::new(3, 2, 1));
        close(y.value(), &key("maxpool.k3s2p1.y"), "maxpool.y");
        let grads = tape.backward(&apply(&y, key("maxpool.k3s2p1.gy")));
        close(
            grads.get(&x).unwrap(),
            &key("maxpool.k3s2p1.gx"),
            "maxpool.gx",
        );

        let tape = Tape::new();
        let x = tape.leaf(key("avgpool.global.x"));
        let y = x.global_avg_pool2d();
        close(y.value(), &key("avgpool.global.y"), "avgpool.y");
        let grads = tape.backward(&apply(&y, key("avgpool.global.gy")));
        close(
            grads.get(&x).unwrap(),
            &key("avgpool.global.gx"),
            "avgpool.gx",
        );
    }
}

#[test]
fn cross_entropy_loss_and_gradient() {
    for dev in devices() {
        let key = |k: &str| load(&format!("cross_entropy.{k}"), &dev);
        let labels: Vec<usize> = key("labels").to_vec().iter().map(|&l| l as usize).collect();
        let tape = Tape::new();
        let logits = tape.leaf(key("logits"));
        let loss = logits.cross_entropy(&labels);
        close(
            &loss.value().reshape(&[1]),
            &key("loss").reshape(&[1]),
            "cross_entropy.loss",
        );
        let grads = tape.backward(&loss);
        close(
            grads.get(&logits).unwrap(),
            &key("glogits"),
            "cross_entropy.glogits",
        );
    }
}

#[test]
fn byol_loss_and_gradient() {
    for dev in devices() {
        let key = |k: &str| load(&format!("byol_loss.{k}"), &dev);
        // The same loss two ways: the fused cosine similarity, and
        // l2-normalise + multiply + sum, each as 2 - 2 cos averaged over rows.
        let cosines: [fn(&Var, &Var) -> Var; 2] = [
            |p, z| p.cosine_similarity(z, 1e-8),
            |p, z| {
                p.l2_normalize(1e-12)
                    .mul(&z.l2_normalize(1e-12))
                    .sum(&[1], false)
            },
        ];
        for cos in cosines {
            let tape = Tape::new();
            let p = tape.leaf(key("p"));
            let z = Var::constant(key("z"));
            let loss = cos(&p, &z).mul_scalar(-2.0).add_scalar(2.0).mean_all();
            close(
                &loss.value().reshape(&[1]),
                &key("loss").reshape(&[1]),
                "byol_loss.loss",
            );
            let grads = tape.backward(&loss);
            close(
                grads.get(&p).unwrap(),
                &key("gp"),
                &format!("byol_loss.gp on {dev}"),
            );
        }
    }
}
