//! The promises of docs/reliability.md that need real processes: a run
//! killed (`kill -9`) at random moments, many times, resumes every time and
//! ends bit-identical to a run left alone, with each step recorded once;
//! SIGTERM and SIGHUP checkpoint and exit like Ctrl-C; a closed standard
//! error does not stop training; two runs started on one folder do not
//! both proceed. Every process killed here is one this test started,
//! killed by its pid.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn byol() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_byol"));
    c.env("BYOL_DEVICE", "cpu");
    c
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-rel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A tiny run: 64 images, width 2, batches of 16 (4 steps an epoch).
fn tiny(run: &Path, epochs: usize) -> Vec<String> {
    let epochs = epochs.to_string();
    [
        "pretrain",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        &epochs,
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
        "lars",
        "--lr",
        "0.2",
        "--knn-every",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The (kind, index, loss bits) of every line of a run's record.
fn record(run: &Path) -> Vec<(String, u64, u32)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a torn line was left: {l:?} ({e})"));
            let kind = v["kind"].as_str().unwrap().to_string();
            let at = if kind == "step" {
                &v["step"]
            } else {
                &v["epoch"]
            };
            (
                kind,
                at.as_u64().unwrap(),
                (v["loss"].as_f64().unwrap() as f32).to_bits(),
            )
        })
        .collect()
}

/// Waits until the run has logged step `step`, or fails after a minute.
fn wait_for_step(run: &Path, step: usize, child: &mut Child) {
    let start = Instant::now();
    let needle = format!("\"step\":{step},");
    while !std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|m| m.contains(&needle))
        .unwrap_or(false)
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before step {step}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no step {step} logged"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_same_numbers() {
    let dir = temp("crash");
    let epochs = 30;
    // The run left alone, timed: the kills below land within its length.
    let whole = dir.join("whole");
    let clock = Instant::now();
    let o = byol().args(tiny(&whole, epochs)).output().unwrap();
    let length = clock.elapsed().as_millis() as u64;
    assert!(o.status.success(), "{}", text(&o));
    let want = record(&whole);
    assert_eq!(want.len(), 4 * epochs + epochs);

    // The same run, killed with SIGKILL at random moments and resumed:
    // started afresh while its setup is incomplete (no data.json yet),
    // resumed after.
    let run = dir.join("killed");
    let mut rng = rng::Rng::from_seed(2026);
    let (mut kills, mut kills_after_training) = (0, 0);
    let trained = |run: &Path| {
        std::fs::read_dir(run.join("checkpoints"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| !e.file_name().to_string_lossy().starts_with("epoch-0000."))
            })
            .unwrap_or(false)
    };
    loop {
        let args = if run.join("data.json").exists() {
            vec!["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            tiny(&run, epochs)
        };
        let mut child = byol().args(&args).stderr(Stdio::piped()).spawn().unwrap();
        if kills < 12 {
            // Anywhere from start-up to a sixth of a run's length in: some
            // kills land while it starts, sets up or writes a checkpoint,
            // most in the middle of an epoch.
            std::thread::sleep(Duration::from_millis(rng.below(length / 6 + 1) + 5));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL, to this child's pid only
                child.wait().unwrap();
                kills += 1;
                kills_after_training += trained(&run) as usize;
                continue;
            }
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "after {kills} kills: {}", text(&o));
        break;
    }
    eprintln!(
        "{kills} kills landed in a run of {length} ms, {kills_after_training} after a \
         checkpoint past the start"
    );
    assert_eq!(
        record(&run),
        want,
        "after {kills} kills, the record differs"
    );
    assert!(
        kills >= 6,
        "only {kills} kills landed; the run is too fast to test"
    );
    assert!(
        kills_after_training >= 3,
        "only {kills_after_training} kills landed after training began"
    );
    // No temporary file of a killed writer is left behind.
    for dir in [run.clone(), run.join("checkpoints"), run.join("plots")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "{name} left in {}",
                dir.display()
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_and_sighup_checkpoint_and_exit_like_ctrl_c() {
    for signal in ["-TERM", "-HUP"] {
        let dir = temp(&format!("signal{signal}"));
        let run = dir.join("run");
        let mut child = byol()
            .args(tiny(&run, 200))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_step(&run, 2, &mut child);
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(130), "{signal}: {}", text(&o));
        // A checkpoint of where it stopped (mid-epoch, or the end of the
        // epoch whose last step it stopped after)...
        let stopped_at = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .any(|n| n.ends_with(".json") && n != "epoch-0000.json");
        assert!(
            stopped_at,
            "{signal}: no checkpoint of the step it stopped at"
        );
        // ...that a resume takes, without skipping it as damaged.
        let steps_done = record(&run).iter().filter(|r| r.0 == "step").count();
        let mut again = byol()
            .args(["pretrain", "--resume", run.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_step(&run, steps_done + 2, &mut again);
        again.kill().unwrap();
        let o = again.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("skipped"), "{signal}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_closed_standard_error_does_not_stop_training() {
    let dir = temp("stderr");
    let run = dir.join("run");
    let mut child = byol()
        .args(tiny(&run, 3))
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: the pipes are closed at once (as when `| head` exits).
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(run.join("checkpoints/epoch-0003.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_runs_on_one_folder_do_not_both_proceed() {
    let dir = temp("two");
    let run = dir.join("run");
    let mut a = byol()
        .args(tiny(&run, 200))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = byol()
        .args(tiny(&run, 200))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One of them trains; the other is refused, naming the holder.
    let start = Instant::now();
    let loser = loop {
        if let Some(status) = a.try_wait().unwrap() {
            break (status, a, b);
        }
        if let Some(status) = b.try_wait().unwrap() {
            break (status, b, a);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "neither was refused"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let (status, refused, mut winner) = loser;
    let o = refused.wait_with_output().unwrap();
    assert!(!status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by process"), "{err}");
    wait_for_step(&run, 2, &mut winner);
    winner.kill().unwrap();
    winner.wait().unwrap();
    // The record is one run's: steps 0, 1, 2, ... once each.
    let steps: Vec<u64> = record(&run)
        .iter()
        .filter(|r| r.0 == "step")
        .map(|r| r.1)
        .collect();
    let expected: Vec<u64> = (0..steps.len() as u64).collect();
    assert_eq!(steps, expected, "two runs' steps interleaved");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A damaged copy of `good`: a flipped bit, a byte set to an extreme, a
/// cut, garbage appended (the same kinds of damage as the readers' fuzz
/// harness in `byol/tests/fuzz_readers.rs`).
fn mutate(good: &[u8], rng: &mut rng::Rng) -> Vec<u8> {
    let mut b = good.to_vec();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(b.len().max(1) as u64) as usize;
        match rng.below(4) {
            0 if !b.is_empty() => b[i] ^= 1 << rng.below(8),
            1 if !b.is_empty() => {
                b[i] = [b'"', b'=', b'\n', b'[', b'9', 0xFF][rng.below(6) as usize]
            }
            2 => b.truncate(i),
            _ => b.extend((0..rng.below(16)).map(|_| rng.below(128) as u8)),
        }
    }
    b
}

/// Settings files damaged every way: an error (status 1 or 2, never a
/// panic's 101) naming the file, or, when the damage left valid settings,
/// the next check's error.
#[test]
fn damaged_settings_files_give_errors_not_panics() {
    let dir = temp("toml");
    let good =
        b"epochs = 3\nbatch-size = 64\nlr = 0.5\narch = \"resnet18\"\nno-predictor = false\n\
                 optimizer = \"lars\"\nmin_crop = 0.2\njitter = 1.0\nbrightness = \"additive\"\n";
    let file = dir.join("settings.toml");
    let out = dir.join("run");
    let mut rng = rng::Rng::from_seed(7);
    for case in 0..300 {
        std::fs::write(&file, mutate(good, &mut rng)).unwrap();
        // --dataset cifar10 without --data fails right after the settings
        // are read: nothing trains.
        let o = byol()
            .args([
                "pretrain",
                "--config",
                file.to_str().unwrap(),
                "--dataset",
                "cifar10",
            ])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)) && !err.contains("panicked"),
            "case {case}: {}",
            text(&o)
        );
        assert!(
            err.contains("settings.toml") || err.contains("--data"),
            "case {case}: {err}"
        );
        assert!(!out.exists(), "case {case}: a run folder was made");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run that finished and saved its work succeeds even when its plots
/// cannot be drawn (here `plots` is a file, so the folder cannot be made):
/// a warning, not a failed run.
#[test]
fn plots_that_cannot_be_drawn_are_a_warning_after_a_finished_run() {
    let dir = temp("plots");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("plots"), "in the way").unwrap();
    let o = byol().args(tiny(&run, 1)).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: the plots were not drawn"), "{err}");
    assert!(run.join("checkpoints/epoch-0001.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}
