//! `Mpi`: the ranks `mpirun` (or Slurm's `srun`) started, on one machine or
//! many, through MPI (Open MPI or MPICH) via the `mpi` crate.
//!
//! MPI is initialised with `MPI_THREAD_SERIALIZED`: any thread may call it,
//! one at a time, which a mutex here guarantees (training calls it from one
//! thread; the lock only matters if a program does otherwise). It is
//! finalised when the last handle is dropped. A rank that dies makes
//! `mpirun` end the others (Open MPI's default), so no rank waits forever.

use crate::{Collective, CollectiveError};
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::Threading;
use std::sync::Mutex;

/// MPI's world communicator (see the module docs).
pub struct Mpi {
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    // Finalises MPI when dropped, after `world`.
    _universe: Universe,
}

// The communicator is a handle to MPI's own state; with MPI initialised
// for serialized use and every call made under `world`'s mutex, sharing it
// between threads is what MPI_THREAD_SERIALIZED allows.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialises MPI (once per process) and joins its world.
    pub fn init() -> Result<Mpi, CollectiveError> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| CollectiveError::MpiFailed("MPI was already initialised".into()))?;
        if threading < Threading::Serialized {
            return Err(CollectiveError::MpiFailed(format!(
                "this MPI library offers thread support {threading:?}; serialized is needed"
            )));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Mpi {
            world: Mutex::new(world),
            rank,
            size,
            _universe: universe,
        })
    }

    fn world(&self) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let mine = values.to_vec();
        self.world()
            .all_reduce_into(&mine[..], values, SystemOperation::sum());
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let mine = values.to_vec();
        self.world()
            .all_reduce_into(&mine[..], values, SystemOperation::sum());
    }

    fn broadcast_f32(&self, values: &mut [f32], root: usize) {
        let world = self.world();
        world.process_at_rank(root as i32).broadcast_into(values);
    }

    fn gather_u64(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size];
        self.world().all_gather_into(&value, &mut all[..]);
        all
    }

    fn barrier(&self) {
        self.world().barrier();
    }

    fn describe(&self) -> String {
        format!("MPI, rank {} of {}", self.rank, self.size)
    }

    fn abort(&self, code: i32) -> ! {
        // MPI_Abort ends every process of the job, on every machine.
        self.world().abort(code)
    }
}
