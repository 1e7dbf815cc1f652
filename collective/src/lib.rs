//! # collective: what processes training one model together need from each other
//!
//! Data-parallel training runs one replica of the model in each of `P`
//! processes (*ranks*), each on its own slice of every batch. To stay one
//! model they need a handful of operations over the group, the
//! *collectives* every distributed training engine is built on:
//!
//! | operation | what every rank has after | used for |
//! | --- | --- | --- |
//! | [`Collective::sum_f32`], [`Collective::sum_f64`] | the element-wise sum of every rank's buffer ("allreduce") | averaging gradients; synchronised batch-norm statistics; the logged loss |
//! | [`Collective::broadcast_f32`] | the root's buffer | identical replicas at the start |
//! | [`Collective::gather_u64`] | every rank's number, in rank order ("all-gather") | checking the replicas agree |
//! | [`all_agree`] | whether every rank said yes | stopping together (a NaN, Ctrl-C, a failed setup), so no rank waits forever in a collective another has left |
//!
//! Three groups implement them:
//!
//! * [`Single`]: one process alone, every operation a no-op: the ordinary
//!   single-process run, unchanged.
//! * [`Local`]: `P` ranks as threads of one process, sums taken in rank
//!   order (deterministic): for tests of the distributed code without MPI.
//! * `Mpi` (feature `mpi`): processes started by `mpirun` or Slurm's
//!   `srun`, on one machine or many, through MPI (Open MPI or MPICH) via
//!   the `mpi` crate. [`from_environment`] picks it when the process was
//!   launched that way.
//!
//! Any of them can be wrapped in [`Timed`], which counts the calls, values
//! and time of each kind of operation.
//!
//! MPI decides its own summation order for more than two ranks, so sums
//! over `P > 2` ranks may differ from a single process's in the last bits;
//! for two ranks `a + b` is the same either way.

#![warn(missing_docs)]

mod local;
#[cfg(feature = "mpi")]
mod mpi;
mod timed;

pub use local::Local;
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use timed::{Tallies, Tally, Timed};

use std::fmt;
use std::sync::Arc;

/// The collective operations over a group of ranks. Every rank of the group
/// must call the same operations in the same order with buffers of the same
/// length; a rank that skips one leaves the others waiting (use
/// [`all_agree`] before leaving a loop).
pub trait Collective: Send + Sync {
    /// This process's number in the group, from 0.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn size(&self) -> usize;

    /// Replaces `values` by their element-wise sum over all ranks.
    fn sum_f32(&self, values: &mut [f32]);

    /// Replaces `values` by their element-wise sum over all ranks, in f64.
    fn sum_f64(&self, values: &mut [f64]);

    /// Replaces `values` by those of rank `root`.
    fn broadcast_f32(&self, values: &mut [f32], root: usize);

    /// Every rank's `value`, in rank order.
    fn gather_u64(&self, value: u64) -> Vec<u64>;

    /// Waits until every rank has called it.
    fn barrier(&self);

    /// For people: e.g. `one process` or `MPI, rank 2 of 4`.
    fn describe(&self) -> String;

    /// Ends every rank of the group with exit status `code`: the way out
    /// for a rank that fails where the others cannot learn of it (they
    /// would otherwise wait for it forever in their next collective). Alone,
    /// it is `std::process::exit`.
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// Whether every rank passes `ok = true`; every rank gets the same answer.
pub fn all_agree(group: &dyn Collective, ok: bool) -> bool {
    let mut failed = [if ok { 0.0 } else { 1.0 }];
    group.sum_f64(&mut failed);
    failed[0] == 0.0
}

/// One process alone: rank 0 of 1, every collective a no-op.
#[derive(Clone, Copy, Debug, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _values: &mut [f32]) {}

    fn sum_f64(&self, _values: &mut [f64]) {}

    fn broadcast_f32(&self, _values: &mut [f32], _root: usize) {}

    fn gather_u64(&self, value: u64) -> Vec<u64> {
        vec![value]
    }

    fn barrier(&self) {}

    fn describe(&self) -> String {
        "one process".into()
    }
}

/// Why a group could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectiveError {
    /// The process was started by an MPI launcher, but this program was
    /// built without MPI.
    NotBuiltWithMpi {
        /// The variable that gave the launcher away.
        variable: String,
    },
    /// MPI would not start.
    MpiFailed(String),
}

impl fmt::Display for CollectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectiveError::NotBuiltWithMpi { variable } => write!(
                f,
                "started by an MPI launcher ({variable} is set), but this program was built \
                 without MPI; build it with the `mpi` feature (cargo build --release -p cli \
                 --features mpi), or run it without mpirun"
            ),
            CollectiveError::MpiFailed(why) => write!(f, "MPI did not start: {why}"),
        }
    }
}

impl std::error::Error for CollectiveError {}

/// Variables that MPI launchers (Open MPI's `mpirun`, MPICH's Hydra, PMIx
/// and Slurm's `srun --mpi=pmix`) set in every process they start.
const LAUNCHER_VARIABLES: [&str; 4] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "PMIX_RANK",
    "MPI_LOCALNRANKS",
];

/// The launcher variable set in this process, if it was started by one.
pub fn launcher_variable() -> Option<String> {
    LAUNCHER_VARIABLES
        .iter()
        .find(|v| std::env::var_os(v).is_some())
        .map(|v| v.to_string())
}

/// How many ranks the launcher started on this machine, where it says
/// (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`):
/// ranks sharing a machine share its cores, so each should use its share
/// of them.
pub fn ranks_on_this_machine() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
}

/// This process's number among the ranks on its machine, where the
/// launcher says (Open MPI's `OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's
/// `MPI_LOCALRANKID`, Slurm's `SLURM_LOCALID`): which of the machine's GPUs
/// it should take.
pub fn local_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// The group this process belongs to: MPI's world when it was started by an
/// MPI launcher (and the program was built with the `mpi` feature), else
/// [`Single`]. Call it once, early (it initialises MPI), and keep the
/// group for the life of the program.
pub fn from_environment() -> Result<Arc<dyn Collective>, CollectiveError> {
    match launcher_variable() {
        None => Ok(Arc::new(Single)),
        #[cfg(feature = "mpi")]
        Some(_) => Ok(Arc::new(Mpi::init()?)),
        #[cfg(not(feature = "mpi"))]
        Some(variable) => Err(CollectiveError::NotBuiltWithMpi { variable }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_its_own_group() {
        let g = Single;
        let mut v = [1.0f32, 2.0];
        g.sum_f32(&mut v);
        g.broadcast_f32(&mut v, 0);
        assert_eq!(v, [1.0, 2.0]);
        assert_eq!(g.gather_u64(7), vec![7]);
        assert!(all_agree(&g, true));
        assert!(!all_agree(&g, false));
        assert_eq!((g.rank(), g.size()), (0, 1));
    }
}
