//! Every subcommand end to end, as a user runs it: the `byol` binary on a
//! tiny configuration (a ResNet-18 of width 2, a few dozen images of the
//! embedded subset, a few steps), checking what each promises to write,
//! and that bad input gives a one-line message and a non-zero exit, never
//! a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn byol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(args)
        .env("BYOL_DEVICE", "cpu")
        .output()
        .expect("the byol binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = byol(args);
    assert!(o.status.success(), "byol {args:?} failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs a command that must fail with a message (exit status 1, or 2 for
/// clap's usage errors; a panic is 101) holding every string of `expect`.
fn fails(args: &[&str], expect: &[&str]) {
    let o = byol(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "byol {args:?} succeeded\n{}", text(&o));
    assert!(
        !err.contains("panicked") && matches!(o.status.code(), Some(1 | 2)),
        "byol {args:?} panicked\n{}",
        text(&o)
    );
    for e in expect {
        assert!(
            err.contains(e),
            "byol {args:?}: '{e}' not in the message\n{}",
            text(&o)
        );
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The tiny pretraining flags: 64 images, width 2, batch 16 (4 steps an
/// epoch).
const TINY: [&str; 14] = [
    "--limit",
    "64",
    "--width",
    "2",
    "--hidden",
    "16",
    "--projection",
    "8",
    "--batch-size",
    "16",
    "--optimizer",
    "adam",
    "--lr",
    "0.001",
];

fn pretrain(run: &Path, epochs: &str) -> Vec<String> {
    let mut args: Vec<&str> = vec!["pretrain", "--quiet", "--out", s(run), "--epochs", epochs];
    args.extend(TINY);
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn pretrain_writes_its_run_folder_and_the_encoder_travels() {
    let dir = temp("pretrain");
    let run = dir.join("run");
    let args = pretrain(&run, "2");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for f in [
        "config.json",
        "data.json",
        "metrics.jsonl",
        "checkpoints/epoch-0001.json",
        "checkpoints/epoch-0002.safetensors",
        "checkpoints/epoch-0002.json",
        "plots/loss.png",
        "plots/knn.png",
        "plots/collapse.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing from the run folder");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"kind\":\"step\"").count(), 8);
    assert_eq!(metrics.matches("\"knn\":0.").count(), 2);

    // The same folder again is refused: it holds someone's run.
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["already holds a run", "--resume"],
    );

    // eval, both methods, with JSON.
    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&run),
        "--limit",
        "64",
        "--method",
        "knn",
    ]);
    assert!(out.contains("kNN top-1 accuracy"), "{out}");
    let json = dir.join("linear.json");
    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&run),
        "--limit",
        "64",
        "--method",
        "linear",
        "--probe-epochs",
        "5",
        "--json",
        s(&json),
    ]);
    assert!(out.contains("linear probe (Adam) top-1 accuracy"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    // The logistic probe, fitted to convergence; a C that is not positive
    // is refused.
    #[rustfmt::skip]
    let out = ok(&[
        "eval", "--checkpoint", s(&run), "--limit", "64", "--method", "logistic",
        "--c", "0.1", "--json", s(&json),
    ]);
    assert!(
        out.contains("logistic probe (L-BFGS) top-1 accuracy"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["converged"], true, "{v}");
    assert!((0.0..=1.0).contains(&v["accuracy"].as_f64().unwrap()));
    fails(
        &[
            "eval",
            "--checkpoint",
            s(&run),
            "--method",
            "logistic",
            "--c",
            "0",
        ],
        &["--c 0"],
    );
    // Few labels: K labelled images of each class, several draws, their
    // spread; more than a class has is refused, naming the class.
    #[rustfmt::skip]
    let out = ok(&[
        "eval", "--checkpoint", s(&run), "--limit", "200", "--method", "logistic",
        "--labels-per-class", "2", "--draws", "3", "--json", s(&json),
    ]);
    assert!(
        out.contains("with 2 labels per class") && out.contains("(3 draws"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let draws = v["accuracies"].as_array().unwrap();
    assert_eq!(draws.len(), 3, "{v}");
    let mean = draws.iter().map(|a| a.as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((v["accuracy"].as_f64().unwrap() - mean).abs() < 1e-6, "{v}");
    #[rustfmt::skip]
    fails(
        &["eval", "--checkpoint", s(&run), "--limit", "200", "--labels-per-class", "500"],
        &["500 labels per class", "has only"],
    );
    fails(
        &["eval", "--checkpoint", s(&run), "--draws", "3"],
        &["--labels-per-class"],
    );
    // The pixels themselves, the baseline, the same way.
    #[rustfmt::skip]
    let out = ok(&["eval", "--pixels", "--checkpoint", s(&run), "--limit", "200", "--method", "logistic",
                   "--labels-per-class", "2", "--draws", "2"]);
    assert!(
        out.contains("with 2 labels per class") && out.contains("(2 draws"),
        "{out}"
    );

    // embed: [N, 8·width] features, and labels.
    let feats = dir.join("f.npy");
    let labels = dir.join("l.npy");
    ok(&[
        "embed",
        "--checkpoint",
        s(&run),
        "--limit",
        "40",
        "--out",
        s(&feats),
        "--labels-out",
        s(&labels),
    ]);
    let bytes = std::fs::read(&feats).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128]);
    assert!(header.contains("'shape': (40, 16)"), "{header}");
    assert_eq!(bytes.len() % 4, 0);
    // Labels as integers; no list of files for a data set of arrays.
    let label_bytes = std::fs::read(&labels).unwrap();
    let label_header = String::from_utf8_lossy(&label_bytes[..128]);
    assert!(label_header.contains("'descr': '<i8'"), "{label_header}");
    assert!(!dir.join("f.csv").exists());

    // export, then embed from the exported weights: the same features.
    let weights = dir.join("encoder.safetensors");
    let out = ok(&["export", "--checkpoint", s(&run), "--out", s(&weights)]);
    assert!(out.contains("tensors of the online encoder"), "{out}");
    let again = dir.join("g.npy");
    ok(&[
        "embed",
        "--weights",
        s(&weights),
        "--limit",
        "40",
        "--out",
        s(&again),
    ]);
    // Bare weights carry no normalisation: the data set's own is used,
    // which for Fashion-MNIST is the one the checkpoint saved.
    assert_eq!(std::fs::read(&again).unwrap(), bytes);

    // embed an .npy array of images in [0, 1].
    let images = dir.join("images.npy");
    write_images_npy(&images, 3);
    let from_npy = dir.join("h.npy");
    ok(&[
        "embed",
        "--checkpoint",
        s(&run),
        "--npy",
        s(&images),
        "--out",
        s(&from_npy),
    ]);
    let header = String::from_utf8_lossy(&std::fs::read(&from_npy).unwrap()[..128]).to_string();
    assert!(header.contains("'shape': (3, 16)"), "{header}");

    // finetune on half the labels for one epoch, saving the result.
    let tuned = dir.join("tuned.safetensors");
    let out = ok(&[
        "finetune",
        "--checkpoint",
        s(&run),
        "--limit",
        "64",
        "--label-fraction",
        "0.5",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        s(&tuned),
    ]);
    assert!(out.contains("fine-tuned on 32 labelled images"), "{out}");
    // K labels per class over draws, and the same network from scratch.
    let tuned_json = dir.join("tuned.json");
    #[rustfmt::skip]
    let out = ok(&[
        "finetune", "--checkpoint", s(&run), "--limit", "200", "--labels-per-class", "2",
        "--draws", "2", "--epochs", "1", "--batch-size", "8", "--from-scratch",
        "--json", s(&tuned_json),
    ]);
    assert!(
        out.contains("fine-tuned from scratch on 20 labelled images"),
        "{out}"
    );
    assert!(out.contains("over 2 draws:"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tuned_json).unwrap()).unwrap();
    assert_eq!(v["draws"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["from_scratch"], true);
    #[rustfmt::skip]
    fails(
        &["finetune", "--checkpoint", s(&run), "--limit", "64", "--labels-per-class", "2",
          "--draws", "2", "--out", s(&tuned)],
        &["--out with --draws"],
    );
    // The fine-tuned file (with its fc head) is an encoder for embed too.
    ok(&[
        "embed",
        "--weights",
        s(&tuned),
        "--limit",
        "8",
        "--out",
        s(&again),
    ]);

    // Bad inputs around an existing run.
    fails(
        &[
            "embed",
            "--checkpoint",
            s(&run),
            "--npy",
            s(&feats),
            "--out",
            s(&again),
        ],
        &["f.npy", "4 dimensions"],
    );
    fails(
        &[
            "finetune",
            "--checkpoint",
            s(&run),
            "--label-fraction",
            "1.5",
        ],
        &["--label-fraction 1.5"],
    );
    fails(
        &[
            "embed",
            "--weights",
            s(&run.join("config.json")),
            "--out",
            s(&again),
        ],
        &["config.json"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes `n` gray 28x28 images with values in [0, 1] as float32 `.npy`.
fn write_images_npy(path: &Path, n: usize) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, 1, 28, 28), }}");
    header.push_str(&" ".repeat(64 * 2 - 10 - header.len() - 1));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for i in 0..n * 28 * 28 {
        bytes.extend_from_slice(&((i % 97) as f32 / 96.0).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn ctrl_c_checkpoints_and_resume_finishes_the_run() {
    let dir = temp("resume");
    let run = dir.join("run");
    let args = pretrain(&run, "200");
    let child = Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(&args)
        .env("BYOL_DEVICE", "cpu")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first steps, then press Ctrl-C.
    let start = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|m| m.contains("\"step\":2,"))
        .unwrap_or(false)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no steps were logged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    // Besides the start (epoch-0000), a checkpoint of where Ctrl-C stopped
    // it (named for its step mid-epoch, for the epoch after an epoch's
    // last step).
    let checkpoints: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "epoch-0000.json")
        .collect();
    assert!(
        !checkpoints.is_empty(),
        "Ctrl-C wrote no checkpoint: {checkpoints:?}"
    );

    // Settings cannot change on resume; the data comes from data.json.
    fails(
        &["pretrain", "--resume", s(&run), "--lr", "0.5"],
        &["--resume"],
    );
    ok(&["pretrain", "--resume", s(&run), "--quiet"]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"step\":799,"),
        "the resumed run did not finish"
    );
    // Each step recorded once, each epoch once.
    assert_eq!(metrics.matches("\"kind\":\"step\"").count(), 800);
    assert_eq!(metrics.matches("\"kind\":\"epoch\"").count(), 200);
    assert!(run.join("checkpoints/epoch-0200.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_files_layer_under_flags() {
    let dir = temp("config");
    let file = dir.join("run.toml");
    std::fs::write(&file, "epochs = 1\nbatch_size = 32\nknn-every = 0\n").unwrap();
    let run = dir.join("run");
    let mut args = vec![
        "pretrain",
        "--quiet",
        "--config",
        s(&file),
        "--out",
        s(&run),
    ];
    args.extend(TINY);
    ok(&args);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["epochs"], 1);
    // --batch-size 16 in TINY wins over the file's 32.
    assert_eq!(config["batch_size"], 16);
    assert_eq!(config["knn_every"], 0);
    std::fs::write(&file, "epochz = 1\n").unwrap();
    fails(
        &[
            "pretrain",
            "--config",
            s(&file),
            "--out",
            s(&dir.join("r2")),
        ],
        &["run.toml", "epochz"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn demo_and_ablate_write_their_tables_and_plots() {
    let dir = temp("demo");
    let demo = dir.join("demo");
    #[rustfmt::skip]
    let out = ok(&[
        "demo", "--limit", "200", "--epochs", "1", "--quiet",
        "--labels-per-class", "1,2", "--draws", "2", "--out", s(&demo),
    ]);
    assert!(out.contains("random-init ResNet-18"), "{out}");
    assert!(out.contains("BYOL-pretrained ResNet-18"), "{out}");
    for f in [
        "results.md",
        "results.json",
        "plots/loss.png",
        "plots/knn.png",
        "plots/pca.png",
        "plots/few-labels.png",
        "checkpoints/epoch-0001.json",
    ] {
        assert!(demo.join(f).exists(), "demo: {f} missing");
    }
    // The few-labels comparison: a row per K, a verdict per K against
    // both baselines, and in results.json every (K, method) cell with one
    // accuracy per draw.
    assert!(out.contains("same ResNet from scratch"), "{out}");
    for k in ["with 1 label per class", "with 2 labels per class"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.contains("trained from scratch") && line.contains("raw pixels"),
            "{line}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("results.json")).unwrap()).unwrap();
    let cells = v["few_labels"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * 4, "{cells:?}");
    for c in cells {
        let acc = c["accuracies"].as_array().unwrap();
        assert_eq!(acc.len(), 2, "{c}");
        assert!(
            acc.iter()
                .all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())),
            "{c}"
        );
    }
    assert_eq!(v["few_labels"]["complete"], true);
    let md = std::fs::read_to_string(demo.join("results.md")).unwrap();
    assert!(md.contains("## Few labels (2 draws each)"), "{md}");
    let ablate = dir.join("ablate");
    let out = ok(&[
        "ablate",
        "--limit",
        "200",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        s(&ablate),
    ]);
    assert!(out.contains("fixed random target"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ablate.join("ablate.json")).unwrap())
            .unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 6);
    assert!(ablate.join("ablate.png").exists() && ablate.join("ablate.md").exists());
    assert!(ablate.join("no-predictor/plots/loss.png").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_small_commands_run() {
    let dir = temp("small");
    let png = dir.join("views.png");
    let out = ok(&[
        "augment-preview",
        "--rows",
        "2",
        "--draws",
        "2",
        "--out",
        s(&png),
    ]);
    assert!(out.contains("views.png"), "{out}");
    assert!(image::open(&png).is_ok());
    let json = dir.join("bench.json");
    #[rustfmt::skip]
    let out = ok(&[
        "bench", "--quick", "--reps", "1", "--peak-tflops", "1", "--out", s(&json),
    ]);
    assert!(out.contains("BYOL step"), "{out}");
    // GFLOP/s figures as a share of the peak given; images/s have none.
    assert!(out.contains("of 1 TFLOP/s"), "{out}");
    let gemm = out.lines().find(|l| l.starts_with("GEMM")).unwrap();
    assert!(gemm.trim_end().ends_with('%'), "{gemm}");
    let step = out.lines().find(|l| l.starts_with("BYOL step")).unwrap();
    assert!(step.trim_end().ends_with('-'), "{step}");
    fails(&["bench", "--quick", "--large"], &["--large"]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 4);
    let out = ok(&["devices"]);
    assert!(out.contains("--device auto picks"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Reads the float32 values of a `.npy` file `byol embed` wrote (its
/// header is padded to a multiple of 64 bytes).
fn npy_values(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn pretrain_and_embed_run_on_the_gpu() {
    // The software adapter (llvmpipe) counts; without any adapter the test
    // skips, unless BYOL_REQUIRE_GPU=1 (CI) makes that a failure.
    if tensor::testing::gpu_device().is_none() {
        return;
    }
    let dir = temp("gpu");
    let run = dir.join("run");
    let mut args = pretrain(&run, "1");
    args.extend(["--device".to_string(), "gpu".to_string()]);
    let o = Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("device: gpu"),
        "{}",
        text(&o)
    );
    // The same checkpoint embedded on both devices: the same features.
    let (on_gpu, on_cpu) = (dir.join("gpu.npy"), dir.join("cpu.npy"));
    for (device, out) in [("gpu", &on_gpu), ("cpu", &on_cpu)] {
        let o = Command::new(env!("CARGO_BIN_EXE_byol"))
            .args([
                "embed",
                "--checkpoint",
                s(&run),
                "--limit",
                "16",
                "--device",
                device,
            ])
            .args(["--out", s(out)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let (g, c) = (npy_values(&on_gpu), npy_values(&on_cpu));
    assert_eq!(g.len(), 16 * 16);
    for (a, b) in g.iter().zip(&c) {
        assert!((a - b).abs() <= 1e-4 + 1e-3 * b.abs(), "gpu {a} vs cpu {b}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes `per_class` small RGB PNGs for each of two classes under
/// `root/<class>/`: class `a` bright on the left, class `b` on the right.
fn write_image_folder(root: &Path, per_class: usize) {
    for (class, left) in [("a", true), ("b", false)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let img = image::RgbImage::from_fn(20, 20, |x, y| {
                let on = (x < 10) == left;
                let v = if on { 200 } else { 20 } + ((x + y + i as u32) % 7) as u8;
                image::Rgb([v, v / 2, 255 - v])
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

#[test]
fn a_folder_of_images_pretrains_evaluates_and_embeds() {
    let dir = temp("folder");
    let (train, test) = (dir.join("train"), dir.join("test"));
    write_image_folder(&train, 12);
    write_image_folder(&test, 4);
    std::fs::write(train.join("notes.txt"), "not an image").unwrap();
    let run = dir.join("run");
    ok(&[
        "pretrain",
        "--quiet",
        "--dataset",
        "folder",
        "--data",
        s(&train),
        "--test-data",
        s(&test),
        "--image-size",
        "16",
        "--channels",
        "3",
        "--width",
        "2",
        "--hidden",
        "16",
        "--projection",
        "8",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--out",
        s(&run),
    ]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    // 24 images, batches of 8: 3 steps an epoch; the kNN monitor ran on
    // the labelled test folder.
    assert_eq!(metrics.matches("\"kind\":\"step\"").count(), 6);
    assert!(metrics.contains("\"knn\":"), "{metrics}");
    // The data description travels with the run: eval and embed need only
    // the folders again.
    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&run),
        "--dataset",
        "folder",
        "--data",
        s(&train),
        "--test-data",
        s(&test),
        "--image-size",
        "16",
    ]);
    assert!(out.contains("on 8 test images (2 classes)"), "{out}");
    // Given the run alone, eval takes the data, size and channels it
    // recorded; --image-size given still wins.
    let bare = ok(&["eval", "--checkpoint", s(&run)]);
    assert_eq!(bare, out);
    fails(
        &["eval", "--checkpoint", s(&run), "--image-size", "4"],
        &["image size 4"],
    );
    let feats = dir.join("f.npy");
    ok(&[
        "embed",
        "--checkpoint",
        s(&run),
        "--dataset",
        "folder",
        "--data",
        s(&train),
        "--image-size",
        "16",
        "--split",
        "train",
        "--out",
        s(&feats),
        "--labels-out",
        s(&dir.join("labels.npy")),
    ]);
    let header = String::from_utf8_lossy(&std::fs::read(&feats).unwrap()[..128]).to_string();
    assert!(header.contains("'shape': (24, 16)"), "{header}");
    // Beside the features, the file and label of each row, in row order.
    let rows = std::fs::read_to_string(dir.join("f.csv")).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 25, "{rows}");
    assert_eq!(lines[0], "row,path,label,class");
    let first = train.join("a").join("0.png");
    assert_eq!(lines[1], format!("0,{},0,a", first.display()));
    assert!(
        lines[24].starts_with("23,") && lines[24].ends_with(",1,b"),
        "{rows}"
    );
    // embed, given the run alone: the same rows.
    let bare = dir.join("bare.npy");
    ok(&[
        "embed",
        "--checkpoint",
        s(&run),
        "--split",
        "train",
        "--out",
        s(&bare),
    ]);
    assert_eq!(
        std::fs::read(&bare).unwrap(),
        std::fs::read(&feats).unwrap()
    );
    // Resuming a finished run is a no-op that still succeeds.
    ok(&["pretrain", "--resume", s(&run), "--quiet"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A folder streamed from disk (`--folder-mode stream`): views cut from
/// the originals as batches need them, a file that fails mid-run replaced
/// and named in a warning, the mode recorded so that a resume streams too;
/// `auto` keeps a small folder in memory and says why.
#[test]
fn a_streamed_folder_pretrains_warns_of_a_bad_file_and_resumes() {
    let dir = temp("streamed");
    let (train, test) = (dir.join("train"), dir.join("test"));
    write_image_folder(&train, 12);
    write_image_folder(&test, 4);
    // A PNG whose header reads and whose pixels are cut off.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(20, 20, image::Rgb([9, 9, 9]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(train.join("a/cut.png"), &png[..png.len() / 3]).unwrap();
    let run = dir.join("run");
    let common = [
        "--dataset",
        "folder",
        "--data",
        s(&train),
        "--test-data",
        s(&test),
        "--image-size",
        "16",
        "--width",
        "2",
        "--hidden",
        "16",
        "--projection",
        "8",
        "--batch-size",
        "8",
        "--epochs",
        "2",
    ];
    let mut args = vec![
        "pretrain",
        "--quiet",
        "--folder-mode",
        "stream",
        "--out",
        s(&run),
    ];
    args.extend(common);
    let o = byol(&args);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("streamed from disk (--folder-mode stream)"),
        "{err}"
    );
    assert!(
        err.contains("warning: 1 of 25 images could not be decoded") && err.contains("cut.png"),
        "{err}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    // 25 images, batches of 8: 3 steps an epoch; the monitor ran.
    assert_eq!(metrics.matches("\"kind\":\"step\"").count(), 6);
    assert!(metrics.contains("\"knn\":"), "{metrics}");
    let data = std::fs::read_to_string(run.join("data.json")).unwrap();
    assert!(data.contains("\"folder_mode\": \"stream\""), "{data}");
    let resumed = ok_err(&["pretrain", "--resume", s(&run), "--quiet"]);
    assert!(resumed.contains("streamed from disk"), "{resumed}");
    // embed, given the run alone, streams too: the bad file is left out of
    // the features and the rows, which match those of the folder in memory.
    let (streamed, held) = (dir.join("streamed.npy"), dir.join("held.npy"));
    let labels = dir.join("labels.npy");
    let embed = |out: &Path, mode: &str| {
        #[rustfmt::skip]
        let args = [
            "embed", "--checkpoint", s(&run), "--split", "train", "--folder-mode", mode,
            "--labels-out", s(&labels), "--out", s(out),
        ];
        ok_err(&args)
    };
    let said = embed(&streamed, "stream");
    assert!(
        said.contains("streamed from disk (--folder-mode stream)")
            && said.contains("warning: 1 of 25 images could not be decoded")
            && said.contains("left out"),
        "{said}"
    );
    let rows = std::fs::read_to_string(dir.join("streamed.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 24, "{rows}");
    assert!(
        !rows.contains("cut.png") && rows.contains(",0,a\n"),
        "{rows}"
    );
    embed(&held, "memory");
    assert_eq!(rows, std::fs::read_to_string(dir.join("held.csv")).unwrap());
    let (a, b) = (npy_values(&streamed), npy_values(&held));
    assert_eq!(a.len(), 24 * 16);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "streamed {x}, in memory {y}"
        );
    }
    // eval, given the run alone: the labelled folders it recorded.
    let scores = ok(&["eval", "--checkpoint", s(&run)]);
    assert!(scores.contains("on 8 test images (2 classes)"), "{scores}");
    // auto: 25 images of 3x16x16 fit in memory.
    let auto = dir.join("auto");
    let mut args = vec!["pretrain", "--quiet", "--epochs", "1", "--out", s(&auto)];
    args.extend(&common[..common.len() - 2]);
    let err = ok_err(&args);
    assert!(err.contains("held in memory (auto: "), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The peak memory a pretraining run reports ("peak memory: N MB"), in MB.
fn peak_memory(args: &[&str]) -> f64 {
    let err = ok_err(args);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .unwrap_or_else(|| panic!("no peak memory line in\n{err}"));
    line.trim_end_matches(" MB").parse().unwrap()
}

/// A streamed folder's memory does not grow with its number of images:
/// 256 and 1,024 images of 128x128 (the same number of steps) peak within
/// a few MB of each other, where holding the 1,024 in memory costs about
/// 50 MB more (the control: the measure can see the difference).
#[test]
fn a_streamed_folder_needs_no_more_memory_for_four_times_the_images() {
    let dir = temp("bounded");
    let mut state = 1u32;
    for (n, name) in [(256, "small"), (1024, "large")] {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_fn(128, 128, |_, _| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (state >> 24) as u8;
                image::Rgb([v, v / 2, 255 - v])
            });
            img.save(folder.join(format!("{i:04}.bmp"))).unwrap();
        }
    }
    let run = |name: &str, epochs: &str, mode: &str| {
        let data = dir.join(name);
        let out = dir.join(format!("run-{name}-{mode}"));
        #[rustfmt::skip]
        let args = [
            "pretrain", "--quiet", "--dataset", "folder", "--data", s(&data),
            "--image-size", "128", "--width", "2", "--hidden", "16", "--projection", "8",
            "--batch-size", "64", "--epochs", epochs, "--knn-every", "0",
            "--folder-mode", mode, "--out", s(&out),
        ];
        peak_memory(&args)
    };
    let small = run("small", "4", "stream");
    let large = run("large", "1", "stream");
    let held = run("large", "1", "memory");
    assert!(
        large - small < 8.0,
        "streamed: {small} MB for 256 images, {large} MB for 1,024"
    );
    assert!(
        held - large > 40.0,
        "1,024 images held in memory ({held} MB) should cost more than streamed ({large} MB)"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--init-weights` starts both encoders from a torchvision-named file
/// (here what `byol export` wrote of another run): the new run's start
/// checkpoint holds exactly those tensors, online and target, and its
/// config names the file; a file of another width is refused naming the
/// tensors whose shapes differ, before a run folder is made.
#[test]
fn pretrain_starts_from_pretrained_weights_and_refuses_ones_that_do_not_fit() {
    let dir = temp("init-weights");
    let first = dir.join("first");
    ok(&pretrain(&first, "1")
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let file = dir.join("encoder.safetensors");
    ok(&["export", "--checkpoint", s(&first), "--out", s(&file)]);
    let second = dir.join("second");
    let mut args = pretrain(&second, "1");
    args.extend(["--init-weights", s(&file), "--seed", "7"].map(String::from));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let start = second.join("checkpoints").join("epoch-0000.json");
    for side in [None, Some("--target")] {
        let again = dir.join("again.safetensors");
        let mut export = vec!["export", "--checkpoint", s(&start), "--out", s(&again)];
        export.extend(side);
        ok(&export);
        assert!(
            std::fs::read(&again).unwrap() == std::fs::read(&file).unwrap(),
            "the {side:?} encoder did not start from the file"
        );
    }
    let config = std::fs::read_to_string(second.join("config.json")).unwrap();
    assert!(config.contains("\"init_weights\""), "{config}");
    // A run of width 4 cannot start from weights of width 2.
    let third = dir.join("third");
    let mut args = pretrain(&third, "1");
    let at = args.iter().position(|a| a == "--width").unwrap();
    args[at + 1] = "4".into();
    args.extend(["--init-weights", s(&file)].map(String::from));
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            "encoder.safetensors",
            "conv1.weight has shape [2, 1, 3, 3] in the file, [4, 1, 3, 3]",
        ],
    );
    assert!(!third.join("config.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--keep-last 2` leaves the two newest checkpoints, and the run still
/// evaluates and resumes from them.
#[test]
fn keep_last_leaves_only_the_newest_checkpoints() {
    let dir = temp("keep-last");
    let run = dir.join("run");
    let mut args = pretrain(&run, "3");
    args.extend(["--keep-last".to_string(), "2".to_string()]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut left: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "epoch-0002.json",
            "epoch-0002.safetensors",
            "epoch-0003.json",
            "epoch-0003.safetensors"
        ]
    );
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"keep_last\": 2"), "{config}");
    ok(&["pretrain", "--resume", s(&run), "--quiet"]);
    let out = ok(&[
        "eval",
        "--checkpoint",
        s(&run),
        "--limit",
        "64",
        "--method",
        "knn",
    ]);
    assert!(out.contains("kNN top-1 accuracy"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_is_named_without_a_panic() {
    let dir = temp("bad");
    fails(&["pretrain", "--device", "tpu"], &["tpu"]);
    fails(
        &[
            "pretrain",
            "--data",
            "no/such/folder",
            "--out",
            s(&dir.join("r")),
        ],
        &["no/such/folder"],
    );
    fails(
        &["pretrain", "--arch", "vgg16", "--out", s(&dir.join("r"))],
        &["vgg16", "resnet18, resnet34, resnet50"],
    );
    fails(
        &["pretrain", "--batch-size", "1", "--out", s(&dir.join("r"))],
        &["batch_size 1"],
    );
    fails(&["pretrain", "--epochs", "many"], &["--epochs"]);
    // The demo's few-labels flags are checked before it trains.
    fails(
        &["demo", "--draws", "0", "--out", s(&dir.join("d"))],
        &["--draws 0"],
    );
    fails(
        &[
            "demo",
            "--labels-per-class",
            "0,10",
            "--out",
            s(&dir.join("d")),
        ],
        &["--labels-per-class [0, 10]", "--no-few-labels"],
    );
    assert!(!dir.join("d").exists(), "a refused demo wrote its folder");
    fails(&["eval", "--checkpoint", "no/such/run"], &["no/such/run"]);
    fails(&["eval"], &["--checkpoint", "--weights"]);
    fails(
        &["export", "--checkpoint", s(&dir)],
        &["no checkpoint found"],
    );
    fails(&["embed", "--checkpoint", s(&dir)], &["--out"]);
    fails(
        &[
            "augment-preview",
            "--augment",
            "heavy",
            "--out",
            s(&dir.join("v.png")),
        ],
        &["heavy", "byol, cifar"],
    );
    fails(
        &[
            "pretrain",
            "--dataset",
            "folder",
            "--out",
            s(&dir.join("r")),
        ],
        &["--data"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mistyped_backend_setting_is_named_before_any_work() {
    // BYOL_CPU_CONV picks the CPU's convolution algorithm and BYOL_CPU_SIMD
    // its vector instructions; a typo must stop the command with the
    // variable named, whether the device is named (BYOL_DEVICE=cpu) or
    // chosen by `auto`, before the run folder exists.
    let dir = temp("setting");
    let run = dir.join("r");
    let settings = [
        (
            "BYOL_CPU_CONV",
            "wingrad",
            "'winograd', 'winograd4', 'im2col'",
        ),
        ("BYOL_CPU_SIMD", "avx-512", "'baseline', 'avx2', 'avx512'"),
    ];
    for (var, value, choices) in settings {
        for device in [Some("cpu"), None] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_byol"));
            cmd.args(["pretrain", "--limit", "40", "--width", "2", "--epochs", "1"])
                .args(["--out", s(&run)])
                .env(var, value);
            match device {
                Some(d) => cmd.env("BYOL_DEVICE", d),
                None => cmd.env_remove("BYOL_DEVICE"),
            };
            let o = cmd.output().expect("the byol binary runs");
            let err = String::from_utf8_lossy(&o.stderr);
            let case = format!("{var}, device {device:?}");
            assert_eq!(o.status.code(), Some(1), "{case}\n{}", text(&o));
            assert!(!err.contains("panicked"), "{case}\n{}", text(&o));
            assert!(
                err.contains(&format!("{var}=\"{value}\"")) && err.contains(choices),
                "{case}\n{}",
                text(&o)
            );
            assert!(!run.exists(), "{case}: the run folder was made");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A change made by hand to a checkpoint's JSON.
type Damage = Box<dyn Fn(&mut serde_json::Value)>;

/// Runs a command that must succeed; returns its standard error.
fn ok_err(args: &[&str]) -> String {
    let o = byol(args);
    assert!(o.status.success(), "byol {args:?} failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A checkpoint damaged by hand (an unknown architecture, a wrong type, a
/// missing key, settings that do not describe its tensors) is an error
/// naming the file through every command that reads one, never a panic;
/// given a run folder, the commands fall back to the newest good
/// checkpoint with a warning naming the damaged one.
#[test]
fn a_damaged_checkpoint_is_an_error_in_every_command() {
    let dir = temp("damaged");
    let run = dir.join("run");
    let args = pretrain(&run, "1");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let json = run.join("checkpoints/epoch-0001.json");
    let start = run.join("checkpoints/epoch-0000.json");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let damages: Vec<(&str, Damage, &str)> = vec![
        (
            "unknown arch",
            Box::new(|v| v["config"]["arch"] = "vgg".into()),
            "vgg",
        ),
        (
            "wrong type",
            Box::new(|v| v["config"]["width"] = "wide".into()),
            "wide",
        ),
        (
            "missing key",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("mean");
            }),
            "missing field `mean`",
        ),
        (
            "bad value",
            Box::new(|v| v["config"]["lr"] = (-0.5).into()),
            "lr -0.5",
        ),
        (
            "settings that do not fit the tensors",
            Box::new(|v| v["config"]["width"] = 64.into()),
            "width 64",
        ),
    ];
    let out = dir.join("out");
    let name = "epoch-0001.json";
    for (what, damage, expect) in &damages {
        let mut v = good.clone();
        damage(&mut v);
        std::fs::write(&json, v.to_string()).unwrap();
        fails(
            &["eval", "--checkpoint", s(&json), "--limit", "64"],
            &[name, expect],
        );
        fails(
            &[
                "embed",
                "--checkpoint",
                s(&json),
                "--limit",
                "8",
                "--out",
                s(&out),
            ],
            &[name, expect],
        );
        fails(
            &["export", "--checkpoint", s(&json), "--out", s(&out)],
            &[name, expect],
        );
        assert!(
            !out.exists(),
            "{what}: a result was written from a damaged checkpoint"
        );
        // Given the run folder: the start checkpoint, with a warning.
        let err = ok_err(&["export", "--checkpoint", s(&run), "--out", s(&out)]);
        assert!(
            err.contains("warning") && err.contains(name) && err.contains(expect),
            "{what}: {err}"
        );
        std::fs::remove_file(&out).unwrap();
    }
    // Every checkpoint damaged: --resume and eval stop, naming the newest.
    let start_good = std::fs::read_to_string(&start).unwrap();
    std::fs::write(&start, "{\"config\": 3}").unwrap();
    fails(&["pretrain", "--resume", s(&run), "--quiet"], &[name]);
    fails(&["eval", "--checkpoint", s(&run), "--limit", "64"], &[name]);
    // The start good again: --resume falls back to it, says so, and trains
    // the epoch again.
    std::fs::write(&start, start_good).unwrap();
    let err = ok_err(&["pretrain", "--resume", s(&run), "--quiet"]);
    assert!(err.contains("warning") && err.contains(name), "{err}");
    assert!(Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(["export", "--checkpoint", s(&json), "--out", s(&out)])
        .output()
        .unwrap()
        .status
        .success());
    // A damaged data.json stops --resume the same way.
    std::fs::write(run.join("data.json"), "{\"dataset\": 7}").unwrap();
    fails(
        &["pretrain", "--resume", s(&run), "--quiet"],
        &["data.json"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every setting's bad value, through a flag and through a `--config`
/// file, is an error naming the setting, the value and what is allowed.
#[test]
fn every_bad_setting_is_named_through_a_flag_and_a_file() {
    let dir = temp("settings");
    let out = dir.join("r");
    // Named values: clap lists the choices (exit 2); the file's error names
    // the key and the choices.
    for (flag, bad, choices) in [
        ("arch", "vgg", "resnet18, resnet34, resnet50"),
        ("stem", "tiny", "imagenet, cifar"),
        ("optimizer", "rmsprop", "lars, sgd, adam, adamw"),
        ("augment", "heavy", "byol, cifar"),
        ("brightness", "linear", "additive, multiplicative"),
    ] {
        let long = format!("--{flag}");
        fails(&["pretrain", &long, bad, "--out", s(&out)], &[bad, choices]);
        let file = dir.join(format!("{flag}.toml"));
        std::fs::write(&file, format!("{flag} = \"{bad}\"\n")).unwrap();
        let first = choices.split(", ").next().unwrap();
        fails(
            &["pretrain", "--config", s(&file), "--out", s(&out)],
            &[flag, bad, first],
        );
    }
    // Numbers out of range: the library names the setting and the value.
    for (flag, key, bad, expect) in [
        ("--width", "width", "0", "width 0"),
        (
            "--width",
            "width",
            "5000",
            "width 5000: must be from 1 to 1024",
        ),
        ("--hidden", "hidden", "100000000", "hidden 100000000"),
        ("--hidden", "hidden", "0", "hidden 0"),
        ("--projection", "projection", "0", "projection 0"),
        ("--epochs", "epochs", "0", "epochs 0"),
        ("--batch-size", "batch_size", "1", "batch_size 1"),
        ("--lr", "lr", "-1", "lr -1"),
        ("--weight-decay", "weight_decay", "-1", "weight_decay -1"),
        ("--warmup-epochs", "warmup_epochs", "-2", "warmup_epochs -2"),
        ("--tau", "tau", "1.5", "tau 1.5"),
        ("--min-crop", "min_crop", "0", "min_crop 0"),
        ("--jitter", "jitter", "3", "jitter 3"),
        (
            "--checkpoint-every",
            "checkpoint_every",
            "0",
            "checkpoint_every 0",
        ),
    ] {
        fails(
            &["pretrain", &format!("{flag}={bad}"), "--out", s(&out)],
            &[expect],
        );
        let file = dir.join(format!("{key}.toml"));
        std::fs::write(&file, format!("{key} = {bad}\n")).unwrap();
        fails(
            &["pretrain", "--config", s(&file), "--out", s(&out)],
            &[expect],
        );
    }
    // Values of the wrong type.
    fails(
        &["pretrain", "--seed=-3", "--out", s(&out)],
        &["--seed", "-3"],
    );
    let file = dir.join("seed.toml");
    std::fs::write(&file, "seed = \"zero\"\n").unwrap();
    fails(
        &["pretrain", "--config", s(&file), "--out", s(&out)],
        &["seed", "zero"],
    );
    assert!(!out.exists(), "a refused run left a folder behind");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The study's tiny flags: the tiny pretraining (without `--limit`) and a
/// quick few-labels part.
fn study_args(out: &Path, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = vec!["study", "--quiet", "--out", s(out), "--epochs", epochs];
    args.extend(TINY);
    args.extend(extra);
    args.iter().map(|a| a.to_string()).collect()
}

fn cell_names(study: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(study.join("cells"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_study_measures_every_cell_once_and_refuses_other_settings() {
    let dir = temp("study");
    let study = dir.join("study");
    let few = [
        "--labels-per-class",
        "1,2",
        "--draws",
        "2",
        "--finetune-epochs",
        "1",
    ];
    let args = study_args(&study, "2", &few);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = byol(&argv);
    assert!(first.status.success(), "{}", text(&first));
    // Pixels; the curve at epochs 0, 1, 2; five ablation rows; 2 K x 2
    // draws x 4 methods; the epoch records of six rows.
    let cells = cell_names(&study);
    assert_eq!(cells.len(), 1 + 3 + 5 + 16 + 6, "{cells:?}");
    for name in [
        "pixels.json",
        "curve-epoch-0000.json",
        "curve-epoch-0002.json",
        "final-tau-1.json",
        "final-tau-0.json",
        "final-no-predictor.json",
        "few-k0002-scratch-draw-01.json",
        "few-k0001-pixels-logistic-draw-00.json",
        "epochs-byol.json",
        "epochs-no-predictor.json",
    ] {
        assert!(
            cells.contains(&name.to_string()),
            "{name} missing: {cells:?}"
        );
    }
    let report = std::fs::read_to_string(study.join("results.md")).unwrap();
    assert!(!report.contains("pending"), "{report}");
    for part in [
        "## The learning curve",
        "Table 5a",
        "## Few labels",
        "fixed random target (tau = 1)",
        "no predictor",
        "same ResNet from scratch",
        "byol study --quiet",
    ] {
        assert!(report.contains(part), "'{part}' not in:\n{report}");
    }
    for plot in ["curve", "ablation", "few-labels"] {
        assert!(study.join(format!("plots/{plot}.png")).exists(), "{plot}");
    }
    assert!(study.join("rows/tau-0.996/plots/loss.png").exists());
    // The BYOL row trains exactly as `byol pretrain` with its settings
    // does (scoring the encoder each epoch changes nothing of it).
    let plain = dir.join("plain");
    let args = pretrain(&plain, "2");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let step_losses = |run: &Path| -> Vec<String> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"kind\":\"step\""))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["loss"].to_string()
            })
            .collect()
    };
    let row = step_losses(&study.join("rows/byol"));
    assert_eq!(row.len(), 8);
    assert_eq!(row, step_losses(&plain));

    // Again: nothing is trained or measured twice.
    let pixels = std::fs::read_to_string(study.join("cells/pixels.json")).unwrap();
    let again = byol(&argv);
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !err.contains("training") && !err.contains("measuring"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(study.join("cells/pixels.json")).unwrap(),
        pixels
    );
    // A measurement removed is made again, alone.
    std::fs::remove_file(study.join("cells/few-k0001-scratch-draw-01.json")).unwrap();
    let again = byol(&argv);
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(err.matches("labels per class, draw").count(), 1, "{err}");
    assert_eq!(cell_names(&study), cells);
    // A study travels as study.json and cells/: without its run folders
    // nothing is trained again and the report keeps every number (the
    // rows' losses and collapse signals included).
    let report = std::fs::read_to_string(study.join("results.md")).unwrap();
    std::fs::remove_dir_all(study.join("rows")).unwrap();
    let again = byol(&argv);
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !err.contains("training") && !err.contains("measuring"),
        "{err}"
    );
    assert!(!study.join("rows").exists());
    assert_eq!(
        std::fs::read_to_string(study.join("results.md")).unwrap(),
        report
    );
    // An earlier curve cell lost then is not remade by training the whole
    // row again (which would mix two runs in one curve).
    std::fs::remove_file(study.join("cells/curve-epoch-0001.json")).unwrap();
    let again = byol(&argv);
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{}", text(&again));
    assert!(!err.contains("training"), "{err}");
    assert!(!study.join("rows").exists());

    // The study's own settings (checkpoints, scoring) are not the user's
    // to change: giving them changes nothing.
    let mut own = few.to_vec();
    own.extend(["--keep-last", "3", "--knn-every", "0"]);
    let own = study_args(&study, "2", &own);
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let again = byol(&own);
    assert!(again.status.success(), "{}", text(&again));
    // Other settings in the same folder are refused, naming the setting.
    let other = study_args(&study, "3", &few);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    fails(&other, &["study.json", "epochs", "2 there, 3 here"]);
    // A folder of other files is not taken for a study.
    let busy = dir.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let busy_args = study_args(&busy, "1", &["--no-ablation", "--no-few-labels"]);
    let busy_args: Vec<&str> = busy_args.iter().map(String::as_str).collect();
    fails(&busy_args, &["holds files but no study"]);
    assert_eq!(
        std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
        "mine"
    );
    // More labels per class than the train split has is refused before
    // any training.
    let greedy = dir.join("greedy");
    let greedy_args = study_args(
        &greedy,
        "1",
        &["--no-ablation", "--labels-per-class", "1,50"],
    );
    let greedy_args: Vec<&str> = greedy_args.iter().map(String::as_str).collect();
    fails(&greedy_args, &["--labels-per-class 50", "class", "only"]);
    assert!(!greedy.join("rows").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_stopped_study_continues_where_it_stopped() {
    let dir = temp("study-stop");
    let study = dir.join("study");
    let args = study_args(&study, "30", &["--no-ablation", "--no-few-labels"]);
    let child = Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(&args)
        .env("BYOL_DEVICE", "cpu")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first epoch of the BYOL row, then press Ctrl-C.
    let metrics = study.join("rows/byol/metrics.jsonl");
    let start = Instant::now();
    while !std::fs::read_to_string(&metrics)
        .map(|m| m.contains("\"kind\":\"epoch\""))
        .unwrap_or(false)
    {
        assert!(start.elapsed() < Duration::from_secs(120), "no epoch ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The report is rewritten after every curve cell, while the row trains.
    while !std::fs::read_to_string(study.join("results.md"))
        .map(|r| r.lines().any(|l| l.starts_with("| 1 |")))
        .unwrap_or(false)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the report shows no epoch 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("Continue with the same command"), "{err}");
    let report = std::fs::read_to_string(study.join("results.md")).unwrap();
    assert!(report.contains("In training: "), "{report}");

    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let rest = byol(&argv);
    let err = String::from_utf8_lossy(&rest.stderr).to_string();
    assert!(rest.status.success(), "{}", text(&rest));
    assert!(err.contains("continuing the study"), "{err}");
    // Every epoch scored, and recorded once.
    let cells = cell_names(&study);
    for e in 0..=30 {
        assert!(
            cells.contains(&format!("curve-epoch-{e:04}.json")),
            "epoch {e}: {cells:?}"
        );
    }
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(m.matches("\"kind\":\"epoch\"").count(), 30);
    let report = std::fs::read_to_string(study.join("results.md")).unwrap();
    assert!(
        !report.contains("pending") && !report.contains("In training"),
        "{report}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--device auto` on a command that trains says what it chose and why;
/// with no hardware GPU the CPU is the only candidate and nothing is
/// measured or remembered, with one the measurement is remembered in
/// BYOL_CACHE_DIR.
#[test]
fn auto_says_which_device_it_chose_and_why() {
    let dir = temp("auto");
    let cache = dir.join("cache");
    let mut args = pretrain(&dir.join("run"), "1");
    args.extend(["--device".to_string(), "auto".to_string()]);
    let o = Command::new(env!("CARGO_BIN_EXE_byol"))
        .args(&args)
        .env("BYOL_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{}", text(&o));
    let line = err
        .lines()
        .find(|l| l.starts_with("device: auto chose"))
        .unwrap_or_else(|| panic!("no choice said:\n{err}"));
    let file = cache.join("device-choice.json");
    if line.contains("the only candidate") {
        assert!(line.contains("cpu"), "{line}");
        assert!(!file.exists());
    } else {
        assert!(line.contains("images/s") && file.exists(), "{line}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
