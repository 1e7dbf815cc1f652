//! `--device auto` by measurement: which device runs *this* run's step
//! fastest.
//!
//! A hardware GPU is not always faster than the CPU backend: an integrated
//! GPU, a small network or a small batch can make the CPU win. So instead
//! of choosing by kind, [`choose`] times the run's own BYOL step (its
//! networks, batch and image shape, on random views) on each candidate and
//! takes the one with the most images per second:
//!
//! 1. a *scout*: one warm-up step and one timed step at a batch of
//!    [`SCOUT_BATCH`] on every candidate (seconds even on a slow one); a
//!    candidate more than [`SCOUT_MARGIN`] times slower per image than the
//!    best scout is out (no full-batch step of a device that slow is worth
//!    waiting for);
//! 2. the run's batch on the rest: one warm-up step, then the median of up
//!    to [`TIMED_STEPS`] timed steps (one when a step takes over a second).
//!
//! The answer is remembered in a small JSON file per machine (see
//! [`cache_path`]), keyed by the step's shape and the candidates, so the
//! next run with the same shape on the same machine starts at once. The
//! file is safe to delete: the next run measures again.

use crate::config::TrainConfig;
use crate::error::{ByolError, Result};
use crate::step::ByolStep;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tensor::{Device, Tensor};

/// The batch of the scouting steps.
pub const SCOUT_BATCH: usize = 8;
/// A candidate this many times slower per image than the best scout is
/// not timed at the full batch.
pub const SCOUT_MARGIN: f64 = 10.0;
/// The most timed full-batch steps per candidate.
pub const TIMED_STEPS: usize = 3;

/// One candidate's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The device, as [`Device::describe`] says it.
    pub device: String,
    /// Images per second of the run's step at its batch; `None` when the
    /// scout already ruled it out.
    pub images_per_s: Option<f64>,
    /// Images per second at the scout's batch.
    pub scout_images_per_s: f64,
}

/// What [`choose`] decided.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The chosen device.
    pub device: Device,
    /// One line for people: what was chosen and why.
    pub reason: String,
}

/// The cache file: measurements by key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// Key (step shape and candidates) → the candidates' measurements.
    choices: BTreeMap<String, Vec<Measured>>,
}

/// The file that remembers choices: `$BYOL_CACHE_DIR/device-choice.json`,
/// else under `$XDG_CACHE_HOME/byol/`, else `~/.cache/byol/`; `None`
/// when none of these is set.
pub fn cache_path() -> Option<PathBuf> {
    cache_path_from(|name| std::env::var_os(name))
}

/// [`cache_path`] with the environment read through `env`.
fn cache_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let dir = var("BYOL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("byol")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("byol")))?;
    Some(dir.join("device-choice.json"))
}

/// What decides the speed of a step: the networks, batch and image shape
/// (settings that do not change the arithmetic, such as the learning
/// rate, are left out).
fn step_key(config: &TrainConfig, channels: usize, image: [usize; 2]) -> String {
    format!(
        "{:?} {:?} width {} heads {}/{}{} batch {} images {}x{}x{}",
        config.arch,
        config.stem,
        config.width,
        config.hidden,
        config.projection,
        if config.predictor {
            ""
        } else {
            " no predictor"
        },
        config.batch_size,
        channels,
        image[0],
        image[1]
    )
}

/// Seconds per step of `config`'s BYOL step at `batch` on `device`: one
/// warm-up step (it compiles a GPU's shaders), then the median of up to
/// `timed` steps, stopping early once a second has been spent.
pub fn time_step(
    config: &TrainConfig,
    channels: usize,
    image: [usize; 2],
    batch: usize,
    device: &Device,
    timed: usize,
) -> Result<f64> {
    let mut step = ByolStep::new(
        config.network(channels),
        config.seed,
        config.optimizer,
        config.weight_decay,
        device,
    );
    let shape = [batch, channels, image[0], image[1]];
    let v1 = Tensor::randn(&shape, 0.0, 1.0, 1, device);
    let v2 = Tensor::randn(&shape, 0.0, 1.0, 2, device);
    let mut once = || -> Result<f64> {
        let start = Instant::now();
        // A tiny learning rate: the weights barely move, as in a real step.
        step.step(&v1, &v2, 1e-6, 0.99).map_err(|e| {
            ByolError::Input(format!("timing the step on {}: {e:?}", device.describe()))
        })?;
        device.synchronize();
        Ok(start.elapsed().as_secs_f64())
    };
    once()?;
    let mut times = Vec::new();
    let spent = Instant::now();
    while times.len() < timed.max(1) {
        times.push(once()?);
        if spent.elapsed().as_secs_f64() > 1.0 {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Measures `candidates` on `config`'s step (see the module doc) and
/// returns them, best first by images per second at the run's batch.
pub fn measure(
    candidates: &[Device],
    config: &TrainConfig,
    channels: usize,
    image: [usize; 2],
) -> Result<Vec<Measured>> {
    let scout_batch = SCOUT_BATCH.min(config.batch_size).max(2);
    let mut measured = Vec::new();
    for device in candidates {
        let t = time_step(config, channels, image, scout_batch, device, 1)?;
        measured.push(Measured {
            device: device.describe(),
            images_per_s: None,
            scout_images_per_s: scout_batch as f64 / t,
        });
    }
    let best_scout = measured
        .iter()
        .map(|m| m.scout_images_per_s)
        .fold(0.0, f64::max);
    for (m, device) in measured.iter_mut().zip(candidates) {
        if m.scout_images_per_s * SCOUT_MARGIN < best_scout {
            continue;
        }
        let t = time_step(
            config,
            channels,
            image,
            config.batch_size,
            device,
            TIMED_STEPS,
        )?;
        m.images_per_s = Some(config.batch_size as f64 / t);
    }
    Ok(measured)
}

/// The fastest of `candidates` for `config`'s step on images of
/// `channels` x `image`: remembered in `cache` (when given) from an
/// earlier measurement with the same key, else measured and remembered.
/// One candidate is chosen without measuring.
pub fn choose(
    candidates: &[Device],
    config: &TrainConfig,
    channels: usize,
    image: [usize; 2],
    cache: Option<&Path>,
) -> Result<Choice> {
    let Some(first) = candidates.first() else {
        return Err(ByolError::Input("no device to choose from".into()));
    };
    if candidates.len() == 1 {
        return Ok(Choice {
            device: first.clone(),
            reason: format!("{} (the only candidate: no hardware GPU)", first.describe()),
        });
    }
    // A GPU's kernels are part of what was timed: another set is another
    // measurement.
    let names: Vec<String> = candidates
        .iter()
        .map(|d| match d {
            Device::Gpu(ctx) => format!("{} [{} kernels]", d.describe(), ctx.kernel_set().name()),
            Device::Cpu => d.describe(),
        })
        .collect();
    let key = format!(
        "{} | {}",
        step_key(config, channels, image),
        names.join(" + ")
    );
    let mut file = cache.map(read_cache).unwrap_or_default();
    let (measured, remembered) = match file.choices.get(&key) {
        Some(m) if m.len() == candidates.len() => (m.clone(), true),
        _ => (measure(candidates, config, channels, image)?, false),
    };
    let best = measured
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.images_per_s.map(|s| (i, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let figures: Vec<String> = measured
        .iter()
        .map(|m| match m.images_per_s {
            Some(s) => format!("{}: {s:.0} images/s", m.device),
            None => format!(
                "{}: {:.1} images/s at batch {SCOUT_BATCH}, too slow to try at the full batch",
                m.device, m.scout_images_per_s
            ),
        })
        .collect();
    let mut reason = format!(
        "{} is the fastest for this run's step ({}): {}",
        names[best],
        step_key(config, channels, image),
        figures.join("; ")
    );
    match (remembered, cache) {
        (true, Some(path)) => {
            reason += &format!(
                " (measured before; delete {} to measure again)",
                path.display()
            )
        }
        (false, Some(path)) => {
            file.choices.insert(key, measured);
            // A cache that cannot be written costs the next run a
            // measurement, nothing more.
            if write_cache(path, &file).is_ok() {
                reason += &format!(" (remembered in {})", path.display());
            }
        }
        _ => {}
    }
    Ok(Choice {
        device: candidates[best].clone(),
        reason,
    })
}

/// The cache at `path`; empty when missing or unreadable (it is only a
/// cache).
fn read_cache(path: &Path) -> Cache {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_cache(path: &Path, cache: &Cache) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ByolError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let text = serde_json::to_string_pretty(cache)
        .map_err(|e| ByolError::Config(format!("the device cache: {e}")))?;
    files::write_atomically(path, (text + "\n").as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerKind;

    fn tiny() -> TrainConfig {
        TrainConfig {
            width: 2,
            hidden: 16,
            projection: 8,
            batch_size: 16,
            optimizer: OptimizerKind::Adam,
            ..TrainConfig::default()
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("byol-choice-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn one_candidate_is_chosen_without_measuring() {
        let dir = temp("one");
        let file = dir.join("device-choice.json");
        let c = choose(&[Device::Cpu], &tiny(), 1, [28, 28], Some(&file)).unwrap();
        assert_eq!(c.device, Device::Cpu);
        assert!(c.reason.contains("only candidate"), "{}", c.reason);
        assert!(!file.exists());
    }

    /// With the CPU and a GPU (the software adapter where there is no
    /// hardware one; skipped, saying so, where there is none), both are
    /// measured, the faster is chosen, and the next choice is remembered.
    #[test]
    fn the_faster_device_is_chosen_and_remembered() {
        let Some(gpu) = tensor::testing::gpu_device() else {
            return;
        };
        let dir = temp("two");
        let file = dir.join("device-choice.json");
        let config = tiny();
        let candidates = [Device::Cpu, gpu];
        let first = choose(&candidates, &config, 1, [16, 16], Some(&file)).unwrap();
        assert!(file.exists(), "{}", first.reason);
        let cache = read_cache(&file);
        let measured = cache.choices.values().next().unwrap();
        assert_eq!(measured.len(), 2);
        // The choice is the one with the most images per second.
        let best = measured
            .iter()
            .filter_map(|m| m.images_per_s.map(|s| (m.device.clone(), s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(first.device.describe(), best.0, "{}", first.reason);
        assert!(measured.iter().all(|m| m.scout_images_per_s > 0.0));
        // Asked again: from the file, the same device, no new measurement.
        let again = choose(&candidates, &config, 1, [16, 16], Some(&file)).unwrap();
        assert_eq!(again.device, first.device);
        assert!(again.reason.contains("measured before"), "{}", again.reason);
        // Another shape is another key.
        let wider = TrainConfig {
            width: 4,
            ..config.clone()
        };
        choose(&candidates, &wider, 1, [16, 16], Some(&file)).unwrap();
        assert_eq!(read_cache(&file).choices.len(), 2);
        // A damaged file is only a cache: measured again.
        std::fs::write(&file, "{ not json").unwrap();
        let mended = choose(&candidates, &config, 1, [16, 16], Some(&file)).unwrap();
        assert!(
            !mended.reason.contains("measured before"),
            "{}",
            mended.reason
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_cache_lives_where_the_environment_says() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        const ALL: [(&str, &str); 3] = [
            ("BYOL_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        let path = |pairs| cache_path_from(env(pairs)).map(|p| p.display().to_string());
        assert_eq!(path(&ALL[..]).as_deref(), Some("/c/device-choice.json"));
        assert_eq!(
            path(&ALL[1..]).as_deref(),
            Some("/x/byol/device-choice.json")
        );
        assert_eq!(
            path(&ALL[2..]).as_deref(),
            Some("/h/.cache/byol/device-choice.json")
        );
        assert_eq!(path(&[("BYOL_CACHE_DIR", "")]), None);
    }
}
