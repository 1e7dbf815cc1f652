//! `byol pretrain` as a group of processes under `mpirun` (the `mpi`
//! feature; Open MPI's `mpirun` must be on the PATH), end to end:
//!
//! * one rank under mpirun trains exactly what the plain command trains;
//! * two ranks train together (one voice on standard error, one record)
//!   and their run resumes alone, as three and as four ranks, landing
//!   where it did;
//! * a stop signal to one rank stops them all with a checkpoint, and a
//!   rank killed outright ends the group instead of hanging it;
//! * two ranks train on the GPU what they train on the CPU;
//! * a bad setting stops every rank with its message, without a hang;
//! * commands other than `pretrain` refuse to run as a group.
//!
//! Without the feature, a process that a launcher started refuses to run
//! (it would otherwise train alone, P times over the same folder).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `command` to its end, or fails the test after `limit` (ending the
/// process it started, by pid): a group that hangs is a failure, not a
/// stuck test suite.
fn finish(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: a hang\n{}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The plain command, alone.
#[cfg(feature = "mpi")]
fn byol(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_byol"));
    c.args(args)
        .env("BYOL_DEVICE", "cpu")
        .env("RAYON_NUM_THREADS", "1");
    finish(c, Duration::from_secs(300))
}

/// The command as `ranks` processes under Open MPI's mpirun (allowed to
/// run as root, as CI does; more ranks than cores; unbound, so each rank
/// may use any core), one compute thread each.
#[cfg(feature = "mpi")]
fn mpirun(ranks: usize, args: &[&str]) -> Output {
    let mut c = Command::new("mpirun");
    c.args([
        "-n",
        &ranks.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    .arg(env!("CARGO_BIN_EXE_byol"))
    .args(args)
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .env("BYOL_DEVICE", "cpu")
    .env("RAYON_NUM_THREADS", "1");
    finish(c, Duration::from_secs(300))
}

#[cfg(feature = "mpi")]
fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// 96 images, batches of 24 (a multiple of 1, 2, 3 and 4 ranks): 4 steps
/// an epoch, 2 epochs; SGD, whose update is proportional to its gradient,
/// so rounding stays rounding. The target's own initialisation and the
/// weight decay are the ones these tests were calibrated with (the
/// defaults until 2026-12-03).
#[cfg(feature = "mpi")]
fn tiny(out: &Path) -> Vec<String> {
    [
        "pretrain",
        "--limit",
        "96",
        "--epochs",
        "2",
        "--batch-size",
        "24",
        "--width",
        "2",
        "--hidden",
        "16",
        "--projection",
        "8",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--target-copy",
        "false",
        "--weight-decay",
        "1.5e-6",
        "--knn-every",
        "0",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([s(out).to_string()])
    .collect()
}

#[cfg(feature = "mpi")]
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|a| a.as_str()).collect()
}

/// Every step's loss in a run's record.
#[cfg(feature = "mpi")]
fn step_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"step\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["loss"].as_f64().unwrap()
        })
        .collect()
}

#[cfg(feature = "mpi")]
fn checkpoint(run: &Path, epoch: usize) -> Vec<u8> {
    std::fs::read(run.join(format!("checkpoints/epoch-{epoch:04}.safetensors"))).unwrap()
}

/// One rank under mpirun takes the plain command's path: the same losses
/// and the same checkpoint, bit for bit.
#[cfg(feature = "mpi")]
#[test]
fn one_rank_under_mpirun_trains_what_the_plain_command_trains() {
    let dir = temp("one");
    let (alone, one) = (dir.join("alone"), dir.join("one"));
    let a = byol(&strs(&tiny(&alone)));
    assert!(a.status.success(), "{}", text(&a));
    let err = ok(mpirun(1, &strs(&tiny(&one))), "mpirun -n 1");
    assert!(!err.contains("processes:"), "one rank is no group:\n{err}");
    assert_eq!(step_losses(&one), step_losses(&alone));
    assert_eq!(checkpoint(&one, 2), checkpoint(&alone, 2));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two ranks train together, rank 0 speaking for both; with their epoch 2
/// lost, the run resumes as two ranks again and lands where they did, bit
/// for bit (weights, optimiser state, schedule and data order all restored),
/// then alone, as three ranks and as four, and takes the same first step.
/// Without synchronised batch norm the two ranks train another model.
///
/// Why only the first step across rank counts: other rank counts add the
/// gradients in another order, and this width-2 network turns rounding into
/// jumps (ReLU and max-pool kinks flip, the gradient changes by a step).
/// Measured from scratch over these 8 steps, the runs fall into families
/// that part by 1e-4 at one step and by 1-8% three steps later: with the
/// im2col GEMM, ranks 1, 3 and 4 against 2, 6, 8 and 12 (parting at step
/// 3, whichever way the weight gradient is summed, float64 included); at
/// widths 4 and 8 it is worse. So a later step held to 1e-3 passes or fails
/// by which rounding a kernel happens to take, and proves nothing about
/// resuming. The first step after resuming is one forward pass from the
/// same weights over the same views: only the order of the synchronised
/// batch-norm sums differs (the 8 steps' first losses agree to 5e-7), so
/// 1e-5 holds with room and still catches a wrong batch, a wrong view or a
/// wrong weight.
#[cfg(feature = "mpi")]
#[test]
fn two_ranks_train_and_their_run_resumes_under_two_one_three_and_four() {
    let dir = temp("two");
    let two = dir.join("two");
    let err = ok(mpirun(2, &strs(&tiny(&two))), "mpirun -n 2");
    assert_eq!(err.matches("data: ").count(), 1, "one voice:\n{err}");
    assert!(
        err.contains("processes: 2 (12 images of each batch of 24"),
        "{err}"
    );
    let want = step_losses(&two);
    assert_eq!(want.len(), 8, "one record of 8 steps");
    assert!(want.iter().all(|l| l.is_finite()));
    for ranks in [2, 1, 3, 4] {
        // A copy of the run as it stood after epoch 1.
        let run = dir.join(format!("resumed-{ranks}"));
        copy_dir(&two, &run);
        for ext in ["json", "safetensors"] {
            std::fs::remove_file(run.join(format!("checkpoints/epoch-0002.{ext}"))).unwrap();
        }
        let args = ["pretrain", "--resume", s(&run), "--quiet"];
        let o = if ranks == 1 {
            byol(&args)
        } else {
            mpirun(ranks, &args)
        };
        let err = ok(o, &format!("resume under {ranks}"));
        assert!(err.contains("resuming"), "{err}");
        let got = step_losses(&run);
        assert_eq!(got.len(), 8);
        assert_eq!(got[..4], want[..4], "epoch 1 is kept as it was");
        if ranks == 2 {
            assert_eq!(got, want, "resumed as two ranks");
            assert_eq!(checkpoint(&run, 2), checkpoint(&two, 2));
            continue;
        }
        let (g, w) = (got[4], want[4]);
        assert!(
            (g - w).abs() <= 1e-5 * w.abs(),
            "resumed under {ranks}: first loss {g}, the two ranks had {w}"
        );
        assert!(got.iter().all(|l| l.is_finite()), "{got:?}");
    }
    // Each rank normalising its own 12 images: another model.
    let own = dir.join("own");
    let mut args = tiny(&own);
    args.extend(["--sync-batch-norm".into(), "false".into()]);
    ok(
        mpirun(2, &strs(&args)),
        "mpirun -n 2 --sync-batch-norm false",
    );
    let other = step_losses(&own);
    assert_eq!(other.len(), 8);
    assert!(other != want);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "mpi")]
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts a 3-epoch run of 2 ranks (85 steps an epoch), waits until a few
/// steps are on record, sends `signal` to the second rank mpirun started
/// (a child of the mpirun this test started), and returns how mpirun
/// ended, with the run folder.
#[cfg(feature = "mpi")]
fn signal_one_rank(name: &str, signal: &str) -> (Output, PathBuf, PathBuf) {
    let dir = temp(name);
    let run = dir.join("run");
    let mut args = tiny(&run);
    // 2048 images: 85 steps an epoch, long enough to be stopped in.
    args[2] = "2048".into();
    args[4] = "3".into();
    let mut child = Command::new("mpirun")
        .args(["-n", "2", "--oversubscribe", "--bind-to", "none"])
        .arg(env!("CARGO_BIN_EXE_byol"))
        .args(strs(&args))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("BYOL_DEVICE", "cpu")
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let lines_on_record = || {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    while lines_on_record() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no steps recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let ranks: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(ranks.len(), 2, "mpirun's children: {children}");
    let sent = Command::new("kill")
        .args([signal, ranks[1]])
        .status()
        .unwrap();
    assert!(sent.success());
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the group did not end after {signal} to one rank: a hang");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), run, dir)
}

/// Ctrl-C (SIGINT) reaching one rank stops the whole group at the same
/// step: rank 0 writes the mid-epoch checkpoint, every rank exits with 130,
/// and the run finishes alone from there.
#[cfg(feature = "mpi")]
#[test]
fn a_stop_signal_to_one_rank_stops_the_group_with_a_checkpoint() {
    let (o, run, dir) = signal_one_rank("stop", "-INT");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Continue with: byol pretrain --resume"),
        "{}",
        text(&o)
    );
    let mid_epoch = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("-step-"));
    assert!(mid_epoch, "no mid-epoch checkpoint\n{}", text(&o));
    let done = byol(&["pretrain", "--resume", s(&run), "--quiet"]);
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(step_losses(&run).len(), 3 * 85, "every step recorded once");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A rank killed outright (SIGKILL: no handler runs) ends the group with an
/// error instead of leaving rank 0 waiting in its next sum: Open MPI's
/// mpirun ends the other ranks when one dies (its default). The run folder
/// keeps its last checkpoint and resumes.
#[cfg(feature = "mpi")]
#[test]
fn a_killed_rank_ends_the_group_and_the_run_resumes() {
    let (o, run, dir) = signal_one_rank("killed", "-KILL");
    assert!(!o.status.success(), "{}", text(&o));
    let done = byol(&["pretrain", "--resume", s(&run), "--quiet"]);
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(step_losses(&run).len(), 3 * 85, "every step recorded once");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two ranks on the GPU (`--device gpu`: each takes adapter `local rank`
/// modulo the adapters of its kind, here both share the software one): the
/// synchronised batch norm and the gradient sums go through the host, and
/// the run trains what the two CPU ranks train, within the two backends'
/// rounding.
#[cfg(feature = "mpi")]
#[test]
fn two_ranks_train_on_the_gpu() {
    let probe = Command::new(env!("CARGO_BIN_EXE_byol"))
        .arg("devices")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&probe.stdout).to_string();
    if !listed.contains("gpu 0:") {
        let required = std::env::var("BYOL_REQUIRE_GPU").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "BYOL_REQUIRE_GPU=1 but no GPU adapter:\n{listed}"
        );
        eprintln!("skipped: no GPU adapter");
        return;
    }
    let dir = temp("gpu");
    let (cpu, gpu) = (dir.join("cpu"), dir.join("gpu"));
    // The views this comparison was calibrated with: the paper's additive
    // brightness. The width-2 network turns rounding into jumps: two runs
    // that agree to 1e-6 part by 1e-4 to 3e-3 in one step, and which run
    // parts first depends on the draws, not on the backend (measured over
    // 8 steps with the default factor against one CPU process: seed 0, the
    // two CPU ranks part at step 3 and the GPU ranks at step 6; seed 1, the
    // GPU ranks at step 6 and the CPU ranks at step 7; seed 2, both at
    // step 4, together). With these views the first epoch stays within it.
    let pinned = ["--brightness".to_string(), "additive".to_string()];
    let mut args = tiny(&cpu);
    args[4] = "1".into();
    args.extend(pinned.clone());
    ok(mpirun(2, &strs(&args)), "two CPU ranks");
    let mut args = tiny(&gpu);
    args[4] = "1".into();
    args.extend(pinned);
    args.extend(["--device".into(), "gpu".into()]);
    let err = ok(mpirun(2, &strs(&args)), "two GPU ranks");
    assert!(err.contains("device: gpu"), "{err}");
    let (want, got) = (step_losses(&cpu), step_losses(&gpu));
    assert_eq!(got.len(), 4);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-3 * w.abs(),
            "GPU loss {g}, CPU loss {w}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A batch that three ranks cannot share, and a command that does not
/// train as a group: every rank stops, the message says why, and nothing
/// hangs or writes a run.
#[cfg(feature = "mpi")]
#[test]
fn bad_requests_stop_every_rank_with_the_reason() {
    let dir = temp("bad");
    let run = dir.join("run");
    let o = mpirun(
        3,
        &[
            "pretrain",
            "--limit",
            "64",
            "--batch-size",
            "32",
            "--out",
            s(&run),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("multiple of the 3 processes"), "{}", text(&o));
    assert!(!err.contains("panicked"), "{}", text(&o));
    assert!(!run.exists(), "a failed start wrote {}", run.display());
    let o = mpirun(2, &["devices"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("only `byol pretrain` trains as a group"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Built without MPI, a process a launcher started says so rather than
/// training alone in a folder its siblings also write.
#[cfg(not(feature = "mpi"))]
#[test]
fn without_mpi_a_launched_process_refuses_with_the_fix() {
    let dir = temp("no-mpi");
    let run = dir.join("run");
    let mut c = Command::new(env!("CARGO_BIN_EXE_byol"));
    c.args(["pretrain", "--limit", "64", "--out", s(&run)])
        .env("OMPI_COMM_WORLD_SIZE", "2");
    let o = finish(c, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("OMPI_COMM_WORLD_SIZE"), "{}", text(&o));
    assert!(err.contains("--features mpi"), "{}", text(&o));
    assert!(!run.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
