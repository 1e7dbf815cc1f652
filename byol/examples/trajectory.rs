//! Many BYOL steps from given weights on given views: the Rust half of the
//! trajectory comparison with PyTorch (`scripts/trajectory.py` is the other
//! half; `docs/trajectory.md` tells the story and the findings).
//!
//! One step can match PyTorch while many do not, when something only many
//! steps see differs (an optimiser's state, the moving average's order, the
//! running statistics). This tool fixes everything else: the initial
//! weights and every view come from files, so two implementations fed the
//! same files must walk the same path, up to float rounding.
//!
//! ```text
//! trajectory init  --width W --hidden H --projection P [--channels C] [--seed S]
//!                  [--target random|copy] --out init.safetensors
//! trajectory views --batches K --batch B [--augment cifar|byol] [--min-crop A]
//!                  [--seed S] [--data DIR] --out views.safetensors
//! trajectory run   --state init.safetensors --views views.safetensors --steps N
//!                  [--optimizer adam|lars] [--lr X] [--weight-decay X] [--tau X]
//!                  [--device cpu|gpu] --losses losses.csv [--out final.safetensors]
//! ```
//!
//! * `init` writes this project's initial networks (every parameter and
//!   running statistic, under the names `ByolNetworks::state` gives them).
//! * `views` writes this project's views of the first `K·B` images of
//!   Fashion-MNIST's train split (`--data`, else where `byol` finds it) as
//!   one tensor `views` of shape `[K, 2, B, C, H, W]`, batch `k` made as the
//!   trainer makes epoch 0's batches.
//! * `run` loads the networks from `--state` (sizes read from the tensors'
//!   shapes), then takes step `s` on batch `s mod K` of `--views` with a
//!   constant learning rate and τ, writes each step's loss and collapse
//!   signal to `--losses` and the networks after the last step to `--out`.

use augment::{load_fashion_mnist, AugmentPreset, Normalization, Split, TwoViewConfig, ViewSource};
use byol::optim::{self, OptimizerKind};
use byol::{ByolNetworks, ByolStep, NetworkConfig, TargetInit};
use models::{weights, Arch, MlpHead, ResNetConfig, Stem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensor::{Device, Tensor};

type Error = Box<dyn std::error::Error>;

/// The `--flag value` pairs after the subcommand.
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, Error> {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("unexpected argument {flag:?}: flags are --name value").into());
            };
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Flags(map))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        self.text(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Result<T, Error> {
        match (self.text(name), default) {
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("--{name} {v}: not a number of the expected kind").into()),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("--{name} is required").into()),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((cmd, rest)) => Flags::parse(rest).and_then(|flags| match cmd.as_str() {
            "init" => init(&flags),
            "views" => views(&flags),
            "run" => run(&flags),
            other => Err(format!("unknown subcommand {other:?}: init, views or run").into()),
        }),
        None => {
            Err("usage: trajectory init|views|run --flag value ... (see the source's doc)".into())
        }
    };
    if let Err(e) = result {
        eprintln!("trajectory: {e}");
        std::process::exit(2);
    }
}

/// `trajectory init`: this project's initial networks, written out.
fn init(flags: &Flags) -> Result<(), Error> {
    let target_init = match flags.text("target").unwrap_or("random") {
        "random" => TargetInit::Random,
        "copy" => TargetInit::CopyOnline,
        other => return Err(format!("--target {other}: random or copy").into()),
    };
    let config = NetworkConfig {
        encoder: ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: flags.number("channels", Some(1))?,
            width: flags.number("width", None)?,
        },
        hidden: flags.number("hidden", None)?,
        projection: flags.number("projection", None)?,
        predictor: true,
        target_init,
    };
    let nets = ByolNetworks::new(config, flags.number("seed", Some(0))?, &Device::Cpu);
    let state: Vec<(String, Tensor)> = nets
        .state()
        .into_iter()
        .map(|(k, p)| (k, p.value()))
        .collect();
    weights::write(&flags.path("out")?, &state)?;
    Ok(())
}

/// `trajectory views`: the trainer's views of the first images, written out.
fn views(flags: &Flags) -> Result<(), Error> {
    let (k, b): (usize, usize) = (flags.number("batches", None)?, flags.number("batch", None)?);
    let data = flags.text("data").map(Path::new);
    let (train, _) = load_fashion_mnist(data, Split::Train)?;
    if k * b > train.len() {
        return Err(format!(
            "{k} batches of {b} need {} images; there are {}",
            k * b,
            train.len()
        )
        .into());
    }
    let preset = match flags.text("augment").unwrap_or("cifar") {
        "cifar" => AugmentPreset::Cifar,
        "byol" => AugmentPreset::Byol,
        other => return Err(format!("--augment {other}: cifar or byol").into()),
    };
    let cfg = TwoViewConfig::preset(preset, Normalization::fashion_mnist())
        .with_min_crop(flags.number("min-crop", Some(0.2))?);
    let seed: u64 = flags.number("seed", Some(0))?;
    let mut all = Vec::new();
    let mut shape = [0; 4];
    for batch in 0..k {
        let indices: Vec<usize> = (batch * b..(batch + 1) * b).collect();
        let (v1, v2) = train.two_views(&indices, 0, seed, &cfg)?;
        shape = v1.shape;
        all.extend_from_slice(&v1.data);
        all.extend_from_slice(&v2.data);
    }
    let [_, c, h, w] = shape;
    let t = Tensor::from_vec(all, &[k, 2, b, c, h, w], &Device::Cpu);
    weights::write(&flags.path("out")?, &[("views".to_string(), t)])?;
    Ok(())
}

/// The sizes of the networks whose tensors these are.
fn config_of(state: &BTreeMap<String, Tensor>) -> Result<NetworkConfig, Error> {
    let conv1 = state
        .get("online.encoder.conv1.weight")
        .ok_or("the state has no online.encoder.conv1.weight")?;
    let (width, in_channels) = (conv1.shape()[0], conv1.shape()[1]);
    let (_, hidden, projection) = MlpHead::infer(state, "online.projector")
        .ok_or("the state has no online.projector.net.{0,3}.weight")?;
    Ok(NetworkConfig {
        encoder: ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels,
            width,
        },
        hidden,
        projection,
        predictor: true,
        target_init: TargetInit::Random,
    })
}

/// `trajectory run`: the steps, their losses, the networks at the end.
fn run(flags: &Flags) -> Result<(), Error> {
    let device = match flags.text("device").unwrap_or("cpu") {
        "cpu" => Device::Cpu,
        "gpu" => Device::gpu()?,
        other => return Err(format!("--device {other}: cpu or gpu").into()),
    };
    let state = weights::read(&flags.path("state")?)?;
    let nets = ByolNetworks::new(config_of(&state)?, 0, &device);
    for (key, p) in nets.state() {
        match state.get(&key) {
            Some(t) => p.set_value(t.to_device(&device)),
            None if key.ends_with("num_batches_tracked") => {}
            None => return Err(format!("the state lacks {key}").into()),
        }
    }
    let kind = match flags.text("optimizer").unwrap_or("adam") {
        "adam" => OptimizerKind::Adam,
        "lars" => OptimizerKind::Lars,
        other => return Err(format!("--optimizer {other}: adam or lars").into()),
    };
    let mut step = ByolStep::from_parts(
        nets,
        optim::build(kind, flags.number("weight-decay", Some(0.0))?),
    );
    let all = weights::read(&flags.path("views")?)?;
    let views = all
        .get("views")
        .ok_or("the views file has no tensor named views")?;
    let &[k, 2, b, c, h, w] = views.shape() else {
        return Err(format!(
            "views has shape {:?}; expected [K, 2, B, C, H, W]",
            views.shape()
        )
        .into());
    };
    let values = views.to_vec();
    let one = b * c * h * w;
    let view = |batch: usize, which: usize| {
        let start = (batch * 2 + which) * one;
        Tensor::from_vec(values[start..start + one].to_vec(), &[b, c, h, w], &device)
    };
    let (steps, lr, tau): (usize, f32, f32) = (
        flags.number("steps", None)?,
        flags.number("lr", Some(1e-3))?,
        flags.number("tau", Some(0.99))?,
    );
    let mut csv = String::from("step,loss,collapse\n");
    for s in 0..steps {
        let stats = step.step(&view(s % k, 0), &view(s % k, 1), lr, tau)?;
        csv.push_str(&format!("{s},{},{}\n", stats.loss, stats.collapse));
    }
    std::fs::write(flags.path("losses")?, csv)?;
    if let Some(out) = flags.text("out") {
        let state: Vec<(String, Tensor)> = step
            .nets
            .state()
            .into_iter()
            .map(|(k, p)| (k, p.value()))
            .collect();
        weights::write(Path::new(out), &state)?;
    }
    Ok(())
}
