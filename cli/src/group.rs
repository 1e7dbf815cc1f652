//! Pretraining as one of a group of processes: `mpirun -n 4 byol pretrain
//! ...` (built with `--features mpi`) starts four copies of the command;
//! each joins the group here, takes its share of the machine's cores, and
//! trains its slice of every batch (see `byol::distributed` and
//! docs/scale-out.md). Only `pretrain` trains in a group; every other
//! command refuses to run as more than one process.
//!
//! Rank 0 alone prints and writes the run folder. When a rank fails, it
//! says why and ends the whole group (`Collective::abort`), so no rank is
//! left waiting for it in a sum.

use crate::error::CliError;
use collective::{Collective, Tallies};
use std::sync::Arc;
use std::time::Duration;

/// The group the launcher started this process in ([`collective::Single`]
/// without one).
pub fn join() -> Result<Arc<dyn Collective>, CliError> {
    collective::from_environment().map_err(CliError::Group)
}

/// Ranks on one machine share its cores: unless `RAYON_NUM_THREADS` says
/// otherwise, each of `k` ranks on a machine of `n` cores computes with
/// `n / k` threads (at least one), rather than all `k` fighting over all
/// `n` cores.
pub fn share_cores(group: &dyn Collective) {
    if group.size() == 1 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let here = collective::ranks_on_this_machine().unwrap_or(1);
    let threads = threads_per_rank(cores, here);
    // Fails only if the pool was already built, which nothing does first.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

/// `cores / ranks`, at least one.
fn threads_per_rank(cores: usize, ranks: usize) -> usize {
    (cores / ranks.max(1)).max(1)
}

/// `result`, once every rank of `group` has said whether its own worked:
/// this rank's error, or, when only another rank failed,
/// `OtherRankFailed` (that rank says why). Every rank must call it at the
/// same point.
pub fn agree<T>(group: &dyn Collective, result: Result<T, CliError>) -> Result<T, CliError> {
    if group.size() == 1 {
        return result;
    }
    match (collective::all_agree(group, result.is_ok()), result) {
        (false, Ok(_)) => Err(CliError::Byol(byol::ByolError::OtherRankFailed)),
        (_, result) => result,
    }
}

/// One line on where rank 0's time in a group run went: the gradient sums
/// (calls, megabytes each, seconds), the small sums (batch norm, the step's
/// numbers, agreements), the rest, and the `copying` of gradients between
/// device and host around the sums, against the whole `elapsed` time. The
/// time of a sum includes waiting for the slowest rank.
pub fn time_in_collectives(t: &Tallies, copying: Duration, elapsed: Duration) -> String {
    let seconds = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let each_mb = |calls: u64, values: u64| values as f64 * 4.0 / 1e6 / calls.max(1) as f64;
    format!(
        "time in collectives (rank 0), of {} training: gradient sums {} x {:.2} MB, {}; \
         small sums {}, {}; broadcasts and checks {}, {}; gradient copies device<->host {}",
        seconds(elapsed),
        t.sum_f32.calls,
        each_mb(t.sum_f32.calls, t.sum_f32.values),
        seconds(t.sum_f32.time),
        t.sum_f64.calls,
        seconds(t.sum_f64.time),
        t.other.calls,
        seconds(t.other.time),
        seconds(copying),
    )
}

/// Says why this rank failed (rank 0 plainly, the others with their rank)
/// and, in a group, ends every rank with status 1. A rank that only learnt
/// that another failed stays quiet, and gives the one that failed a moment
/// to say why before the group ends.
pub fn fail(group: &dyn Collective, error: &CliError) {
    let quiet = matches!(error, CliError::Byol(byol::ByolError::OtherRankFailed));
    if group.size() == 1 {
        say!("error: {error}");
        return;
    }
    match group.rank() {
        _ if quiet => std::thread::sleep(std::time::Duration::from_secs(2)),
        0 => say!("error: {error}"),
        rank => say!("error (rank {rank} of {}): {error}", group.size()),
    }
    group.abort(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_in_collectives_reads_in_megabytes_and_seconds() {
        let mut t = Tallies::default();
        t.sum_f32.calls = 10;
        t.sum_f32.values = 10 * 250_000;
        t.sum_f32.time = Duration::from_millis(1500);
        t.sum_f64.calls = 1300;
        t.sum_f64.time = Duration::from_millis(250);
        let line = time_in_collectives(&t, Duration::from_millis(120), Duration::from_secs(20));
        assert!(line.contains("of 20.00 s training"), "{line}");
        assert!(
            line.contains("gradient sums 10 x 1.00 MB, 1.50 s"),
            "{line}"
        );
        assert!(line.contains("small sums 1300, 0.25 s"), "{line}");
        assert!(line.contains("device<->host 0.12 s"), "{line}");
    }

    #[test]
    fn each_rank_on_a_machine_gets_its_share_of_the_cores() {
        assert_eq!(threads_per_rank(16, 4), 4);
        assert_eq!(threads_per_rank(16, 3), 5);
        assert_eq!(threads_per_rank(2, 4), 1);
        assert_eq!(threads_per_rank(8, 0), 8);
    }
}
