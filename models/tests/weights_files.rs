//! Weights files: save then load is bit-identical; a file that does not fit
//! the model is an error naming the key; parameter counts match
//! torchvision's; the architecture is read back from a state dict.

use models::weights::{self, LoadMode, WeightsError};
use models::{Arch, Module, ResNet, ResNetConfig, Stem};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tensor::{Device, Tensor};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-models-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small(seed: u64) -> ResNet {
    let config = ResNetConfig {
        arch: Arch::ResNet18,
        stem: Stem::Cifar,
        in_channels: 3,
        width: 4,
    };
    ResNet::new(config, seed, &Device::Cpu)
}

#[test]
fn save_then_load_is_bit_identical() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("encoder.safetensors");
    let a = small(1);
    a.buffers()[0].set_value(Tensor::randn(&[4], 0.0, 1.0, 9, &Device::Cpu));
    weights::save(&a, &path).unwrap();
    let b = small(2);
    assert_ne!(
        a.parameters()[0].value().to_vec(),
        b.parameters()[0].value().to_vec()
    );
    let report = weights::load(&b, &path, LoadMode::Strict).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.loaded, a.state().len());
    for (p, q) in a.state().iter().zip(b.state()) {
        assert_eq!(p.name(), q.name());
        let (x, y) = (p.value().to_vec(), q.value().to_vec());
        assert!(
            x.iter().zip(&y).all(|(u, v)| u.to_bits() == v.to_bits()),
            "{} differs",
            p.name()
        );
    }
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_or_misshaped_tensor_is_named() {
    let dir = temp_dir("mismatch");
    let net = small(1);
    let mut named: Vec<(String, Tensor)> = net
        .state()
        .iter()
        .map(|p| (p.name().to_string(), p.value()))
        .collect();

    // Missing: drop layer3.1.conv2.weight.
    let missing = dir.join("missing.safetensors");
    let without: Vec<(String, Tensor)> = named
        .iter()
        .filter(|(n, _)| n != "layer3.1.conv2.weight")
        .cloned()
        .collect();
    weights::write(&missing, &without).unwrap();
    let err = weights::load(&net, &missing, LoadMode::Strict).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WeightsError::Mismatch { .. }));
    assert!(
        msg.contains("missing.safetensors") && msg.contains("missing: layer3.1.conv2.weight"),
        "{msg}"
    );

    // Mis-shaped: bn1.weight with 5 channels instead of 4.
    let misshaped = dir.join("misshaped.safetensors");
    for (n, t) in named.iter_mut() {
        if n == "bn1.weight" {
            *t = Tensor::ones(&[5], &Device::Cpu);
        }
    }
    named.push(("fc.weight".into(), Tensor::zeros(&[10, 32], &Device::Cpu)));
    weights::write(&misshaped, &named).unwrap();
    let msg = weights::load(&net, &misshaped, LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bn1.weight has shape [5] in the file, [4] in the model"),
        "{msg}"
    );
    assert!(msg.contains("unexpected: fc.weight"), "{msg}");

    // A partial load takes what fits and reports the rest.
    let report = weights::load(&net, &misshaped, LoadMode::Partial).unwrap();
    assert_eq!(report.unexpected, vec!["fc.weight".to_string()]);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.loaded, net.state().len() - 1);

    // Not a safetensors file at all; and a path that does not exist.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a weights file").unwrap();
    let msg = weights::load(&net, &junk, LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("junk.safetensors") && msg.contains("not a usable safetensors"),
        "{msg}"
    );
    let msg = weights::load(&net, &dir.join("nope.safetensors"), LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nope.safetensors"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// torchvision's counts include the 1000-class fc layer (features x 1000
/// weights + 1000 biases); the encoder has everything but that layer.
#[test]
fn parameter_counts_match_torchvision() {
    for (arch, torchvision, features) in [
        (Arch::ResNet18, 11_689_512usize, 512usize),
        (Arch::ResNet34, 21_797_672, 512),
        (Arch::ResNet50, 25_557_032, 2048),
    ] {
        let config = ResNetConfig {
            arch,
            stem: Stem::ImageNet,
            in_channels: 3,
            width: 64,
        };
        let net = ResNet::new(config, 0, &Device::Cpu);
        assert_eq!(net.feature_dim(), features);
        let fc = features * 1000 + 1000;
        assert_eq!(net.param_count(), torchvision - fc, "{arch}");
    }
}

#[test]
fn the_architecture_is_read_from_a_state_dict() {
    for config in [
        ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: 1,
            width: 4,
        },
        ResNetConfig {
            arch: Arch::ResNet34,
            stem: Stem::ImageNet,
            in_channels: 3,
            width: 2,
        },
        ResNetConfig {
            arch: Arch::ResNet50,
            stem: Stem::Cifar,
            in_channels: 3,
            width: 2,
        },
    ] {
        let net = ResNet::new(config, 3, &Device::Cpu);
        let tensors: BTreeMap<String, Tensor> = net
            .state()
            .iter()
            .map(|p| (p.name().to_string(), p.value()))
            .collect();
        assert_eq!(ResNetConfig::infer(&tensors), Some(config));
    }
    // A classifier head alone, or a conv1 of the wrong rank, is not a ResNet.
    let mut head = BTreeMap::new();
    head.insert(
        "fc.weight".to_string(),
        Tensor::zeros(&[2, 2], &Device::Cpu),
    );
    assert_eq!(ResNetConfig::infer(&head), None);
    head.insert(
        "conv1.weight".to_string(),
        Tensor::zeros(&[8, 3], &Device::Cpu),
    );
    assert_eq!(ResNetConfig::infer(&head), None);
}

#[test]
fn a_nan_is_never_written_nor_loaded() {
    let dir = temp_dir("nan");
    let net = small(1);
    let d = Device::Cpu;
    let mut named: Vec<(String, Tensor)> = net
        .state()
        .iter()
        .map(|p| (p.name().to_string(), p.value()))
        .collect();
    let shape = named[0].1.shape().to_vec();
    named[0].1 = Tensor::full(&shape, f32::NAN, &d);
    let path = dir.join("nan.safetensors");
    let e = weights::write(&path, &named).unwrap_err().to_string();
    assert!(e.contains(&named[0].0) && e.contains("NaN"), "{e}");
    assert!(!path.exists());
    // A file with an infinity, written by another tool, is refused on load.
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = named
        .iter()
        .map(|(k, t)| {
            let mut v = t.to_vec();
            if k == &named[0].0 {
                v.iter_mut().for_each(|x| *x = f32::INFINITY);
            }
            let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (k.clone(), b, t.shape().to_vec())
        })
        .filter(|(k, _, _)| !k.ends_with("num_batches_tracked"))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (k.clone(), view)
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let fresh = small(2);
    let e = weights::load(&fresh, &path, LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&named[0].0) && e.contains("infinite"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
