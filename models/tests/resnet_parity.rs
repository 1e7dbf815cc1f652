//! The ResNet-18 encoder against PyTorch (`tests/fixtures/`): eval-mode
//! features, training-mode features, the gradient of every parameter, and
//! the running statistics after the training-mode forward, on the CPU and
//! (when there is one) the GPU.

use autograd::{no_grad, Tape, Var};
use models::weights::{self, LoadMode};
use models::{Arch, Module, ResNet, ResNetConfig, Stem};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::testing::{assert_close, gpu_device};
use tensor::{Device, Tensor};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/resnet18_w8_cifar_1ch.safetensors"
);

fn fixture() -> BTreeMap<String, Tensor> {
    weights::read(Path::new(FIXTURE)).expect("the fixture reads")
}

fn check(dev: &Device) {
    let fx = fixture();
    let config = ResNetConfig {
        arch: Arch::ResNet18,
        stem: Stem::Cifar,
        in_channels: 1,
        width: 8,
    };
    let net = ResNet::new(config, 0, dev);
    let report = weights::apply(&net, &fx, "param.", LoadMode::Strict, Path::new(FIXTURE))
        .expect("the fixture fits");
    assert_eq!(
        report.loaded,
        net.parameters().len() + 2 * 20,
        "params plus two running statistics per batch norm"
    );
    assert_eq!(net.feature_dim(), 64);
    let input = Var::constant(fx["input"].to_device(dev));

    // Eval mode: running statistics. Tolerance: float32 sums in another
    // order through 20 layers, 1e-4 absolute + 1e-4 relative.
    net.set_training(false);
    let eval = no_grad(|| net.forward(&Tape::new(), &input));
    assert_close(
        eval.value(),
        &fx["features.eval"],
        1e-4,
        1e-4,
        &format!("features.eval on {dev}"),
    );

    // Training mode: batch statistics, gradients and running statistics.
    net.set_training(true);
    let tape = Tape::new();
    let features = net.forward(&tape, &input);
    assert_close(
        features.value(),
        &fx["features.train"],
        1e-4,
        1e-4,
        &format!("features.train on {dev}"),
    );
    let proj = Var::constant(fx["proj"].to_device(dev));
    tape.backward(&features.mul(&proj).sum_all());
    for p in net.parameters() {
        let want = &fx[&format!("grad.{}", p.name())];
        let got = p
            .grad()
            .unwrap_or_else(|| panic!("{} has no gradient", p.name()));
        // Gradients pass back through every layer: 1e-3 absolute + 1e-3
        // relative (the largest are of order 1).
        assert_close(
            &got,
            want,
            1e-3,
            1e-3,
            &format!("grad.{} on {dev}", p.name()),
        );
    }
    for b in net
        .buffers()
        .iter()
        .filter(|b| !b.name().ends_with("num_batches_tracked"))
    {
        let want = &fx[&format!("after.{}", b.name())];
        assert_close(
            &b.value(),
            want,
            1e-5,
            1e-4,
            &format!("after.{} on {dev}", b.name()),
        );
    }
}

#[test]
fn resnet18_matches_pytorch_on_the_cpu() {
    check(&Device::Cpu);
}

#[test]
fn resnet18_matches_pytorch_on_the_gpu() {
    if let Some(gpu) = gpu_device() {
        check(&gpu);
    }
}
