//! A small fuzz harness on stable Rust: a seeded mutation loop over valid
//! files of every format the project reads (IDX, gzipped IDX, CIFAR, `.npy`,
//! safetensors weights, checkpoint JSON), thousands of cases in seconds.
//! For each damaged file the reader must
//!
//! * not panic,
//! * not allocate more than a bound (a few times what a valid file of that
//!   size needs; counted by this binary's own global allocator), and
//! * when it refuses the file, name it in the error.
//!
//! The mutations: flip a random bit, set a byte to 0x00 or 0xFF, write an
//! extreme 32-bit number (0, 1, 2^31, 2^32 - 1) at a random offset (where
//! headers keep their sizes), cut the file short, append garbage, duplicate
//! a slice. The seed is fixed, so a failure is reproduced by running the
//! test again; the failing case's number is in the message.

use augment::{cifar, idx, npy, CifarKind, Dataset};
use byol::{ByolStep, Checkpoint, CheckpointMeta, TrainConfig};
use rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tensor::{Device, Tensor};

/// The system allocator, counting the bytes held now and the most held
/// since the last reset.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `read` on one case and returns the most memory it held beyond what
/// was held before, and whether it panicked.
fn measured<T>(read: impl FnOnce() -> T) -> (usize, std::thread::Result<T>) {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    (PEAK.load(Ordering::Relaxed).saturating_sub(before), result)
}

/// A damaged copy of `good`.
fn mutate(good: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = good.to_vec();
    let at = |rng: &mut Rng, len: usize| rng.below(len.max(1) as u64) as usize;
    for _ in 0..1 + rng.below(3) {
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = at(rng, b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = at(rng, b.len());
                b[i] = if rng.chance(0.5) { 0 } else { 0xFF };
            }
            2 if b.len() >= 4 => {
                let i = at(rng, b.len() - 3);
                let v: u32 = [0, 1, 1 << 31, u32::MAX][rng.below(4) as usize];
                let bytes = if rng.chance(0.5) {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let keep = at(rng, b.len());
                b.truncate(keep);
            }
            4 => {
                let n = rng.below(64) as usize;
                b.extend((0..n).map(|_| rng.below(256) as u8));
            }
            5 if !b.is_empty() => {
                let i = at(rng, b.len());
                let j = (i + rng.below(32) as usize).min(b.len());
                let copy = b[i..j].to_vec();
                b.splice(i..i, copy);
            }
            _ => {}
        }
    }
    b
}

/// A folder for this harness's files.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Feeds `cases` damaged copies of `good` to `read` (which reads the file
/// at the path it is given), checking the three promises.
fn fuzz<T, E: std::fmt::Display>(
    name: &str,
    good: &[u8],
    cases: usize,
    bound: usize,
    seed: u64,
    read: impl Fn(&Path) -> Result<T, E>,
) {
    let dir = scratch();
    let path = dir.join(name);
    let mut rng = Rng::from_seed(seed);
    let (mut refused, mut peak_seen) = (0, 0);
    for case in 0..cases {
        let bytes = mutate(good, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let (peak, result) = measured(|| read(&path));
        peak_seen = peak_seen.max(peak);
        // Keep the case that fails for whoever investigates it.
        let keep = || std::fs::write(dir.join(format!("failing-{name}")), &bytes).unwrap();
        if result.is_err() || peak > bound {
            keep();
        }
        match result {
            Err(_) => panic!("{name}: case {case} panicked (seed {seed})"),
            Ok(Err(e)) => {
                refused += 1;
                let message = e.to_string();
                assert!(
                    message.contains(name),
                    "{name}: case {case}: the error does not name the file: {message}"
                );
            }
            Ok(Ok(_)) => {}
        }
        assert!(
            peak <= bound,
            "{name}: case {case} held {peak} bytes (bound {bound}) on a {}-byte file",
            bytes.len()
        );
    }
    eprintln!("{name}: {cases} cases, {refused} refused, at most {peak_seen} bytes held");
    assert!(
        refused > cases / 10,
        "{name}: too few cases were refused ({refused})"
    );
}

/// 12 gray images of 6x5 and their labels.
fn small_set() -> Dataset {
    let pixels: Vec<u8> = (0..12 * 30).map(|i| (i * 7 % 256) as u8).collect();
    let labels: Vec<u32> = (0..12).map(|i| i % 3).collect();
    Dataset::new(pixels, 1, 6, 5, Some(labels)).unwrap()
}

/// One test, so that no other test of this binary allocates while a case
/// is measured (the count is the whole process's).
#[test]
fn every_reader_refuses_damaged_files_without_panic_or_runaway_memory() {
    idx_files();
    cifar_npy_and_weights_files();
    checkpoint_descriptions();
}

fn idx_files() {
    let dir = scratch();
    let ds = small_set();
    for gzip in [false, true] {
        let images = dir.join("good-images");
        let labels = dir.join("good-labels");
        idx::write_idx_images(&images, &ds, gzip).unwrap();
        idx::write_idx_labels(&labels, ds.labels().unwrap(), gzip).unwrap();
        let (img, lab) = (
            std::fs::read(&images).unwrap(),
            std::fs::read(&labels).unwrap(),
        );
        let seed = gzip as u64;
        fuzz("images.idx", &img, 1500, 1 << 20, seed, |p| {
            idx::read_idx_images(p)
        });
        fuzz("labels.idx", &lab, 1500, 1 << 20, seed + 10, |p| {
            idx::read_idx_labels(p)
        });
    }
}

fn cifar_npy_and_weights_files() {
    // Three CIFAR-10 records.
    let mut record = vec![0u8; 3 * 3073];
    for (i, b) in record.iter_mut().enumerate() {
        *b = (i % 10) as u8;
    }
    fuzz("batch.bin", &record, 1500, 1 << 20, 20, |p| {
        cifar::read_cifar(&[p], CifarKind::Cifar10)
    });
    // An .npy array (2, 1, 4, 4) of float32.
    let dir = scratch();
    let good = dir.join("good.npy");
    npy::write_f32(&good, &[2, 1, 4, 4], &[0.5; 32]).unwrap();
    fuzz(
        "array.npy",
        &std::fs::read(&good).unwrap(),
        2000,
        1 << 20,
        30,
        npy::read,
    );
    // A small safetensors file.
    let good = dir.join("good.safetensors");
    let d = Device::Cpu;
    let tensors = vec![
        (
            "conv1.weight".to_string(),
            Tensor::randn(&[4, 1, 3, 3], 0.0, 1.0, 1, &d),
        ),
        ("bn1.running_mean".to_string(), Tensor::zeros(&[4], &d)),
    ];
    models::weights::write(&good, &tensors).unwrap();
    fuzz(
        "weights.safetensors",
        &std::fs::read(&good).unwrap(),
        2000,
        1 << 20,
        40,
        models::weights::read,
    );
}

fn checkpoint_descriptions() {
    // A real checkpoint of a tiny run, its JSON damaged.
    let dir = scratch().join("run");
    let _ = std::fs::remove_dir_all(&dir);
    let config = TrainConfig {
        width: 2,
        hidden: 8,
        projection: 4,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let step = ByolStep::new(
        config.network(1),
        0,
        config.optimizer,
        config.weight_decay,
        &Device::Cpu,
    );
    let meta = CheckpointMeta {
        config,
        epoch: 0,
        step: 0,
        in_channels: 1,
        image_size: [8, 8],
        mean: vec![0.5],
        std: vec![0.25],
        images: 16,
    };
    let json = Checkpoint::save(&dir, &meta, &step).unwrap();
    let good = std::fs::read(&json).unwrap();
    // The network of a valid checkpoint: the bound allows a few copies of
    // its tensors, never a network of a size the damage invented.
    fuzz("epoch-0000.json", &good, 1500, 16 << 20, 50, |p| {
        std::fs::copy(p, &json).unwrap();
        Checkpoint::load(&json).and_then(|c| c.restore(&Device::Cpu).map(|_| ()))
    });
}
