//! [`Local`]: a group of `P` ranks that are threads of one process.
//!
//! Each collective is an exchange through shared slots: every rank writes
//! its buffer into its slot, all wait at a barrier, every rank reads all the
//! slots (and computes a sum in rank order, so every rank gets the same
//! bits), and all wait again before the slots can be reused. Slow next to
//! MPI, but exact and deterministic: for testing the distributed code
//! (gradient averages, synchronised batch norm, agreement to stop) in one
//! process, without an MPI installation.

use crate::Collective;
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    size: usize,
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
    u64s: Mutex<Vec<u64>>,
}

/// One rank of a group of threads (see the module docs).
#[derive(Clone)]
pub struct Local {
    rank: usize,
    shared: Arc<Shared>,
}

impl Local {
    /// A group of `size` ranks: give each to its own thread.
    pub fn group(size: usize) -> Vec<Local> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            f32s: Mutex::new(vec![Vec::new(); size]),
            f64s: Mutex::new(vec![Vec::new(); size]),
            u64s: Mutex::new(vec![0; size]),
        });
        (0..size)
            .map(|rank| Local {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Every rank's `mine`, in rank order, through `slots`.
    fn exchange<T: Clone>(&self, mine: &[T], slots: &Mutex<Vec<Vec<T>>>) -> Vec<Vec<T>> {
        let lock = || slots.lock().unwrap_or_else(|e| e.into_inner());
        lock()[self.rank] = mine.to_vec();
        self.shared.barrier.wait();
        let all = lock().clone();
        self.shared.barrier.wait();
        all
    }
}

impl Collective for Local {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let all = self.exchange(values, &self.shared.f32s);
        for (i, v) in values.iter_mut().enumerate() {
            // ((x0 + x1) + x2) + ...: the same order, and bits, on every rank.
            *v = all[1..].iter().fold(all[0][i], |s, r| s + r[i]);
        }
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let all = self.exchange(values, &self.shared.f64s);
        for (i, v) in values.iter_mut().enumerate() {
            *v = all[1..].iter().fold(all[0][i], |s, r| s + r[i]);
        }
    }

    fn broadcast_f32(&self, values: &mut [f32], root: usize) {
        let all = self.exchange(values, &self.shared.f32s);
        values.copy_from_slice(&all[root.min(self.shared.size - 1)]);
    }

    fn gather_u64(&self, value: u64) -> Vec<u64> {
        {
            let mut slots = self.shared.u64s.lock().unwrap_or_else(|e| e.into_inner());
            slots[self.rank] = value;
        }
        self.shared.barrier.wait();
        let all = self
            .shared
            .u64s
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.shared.barrier.wait();
        all
    }

    fn barrier(&self) {
        self.shared.barrier.wait();
    }

    fn describe(&self) -> String {
        format!("threads, rank {} of {}", self.rank, self.shared.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::all_agree;

    /// What one rank saw: a sum, a broadcast, a gather, two agreements.
    type Seen = (Vec<f32>, Vec<f32>, Vec<u64>, bool, bool);

    #[test]
    fn threads_sum_broadcast_gather_and_agree() {
        let results: Vec<Seen> = std::thread::scope(|s| {
            let handles: Vec<_> = Local::group(3)
                .into_iter()
                .map(|g| {
                    s.spawn(move || {
                        let r = g.rank() as f32;
                        let mut sum = vec![r, 1.0, 0.5 * r];
                        g.sum_f32(&mut sum);
                        let mut b = vec![r; 2];
                        g.broadcast_f32(&mut b, 2);
                        let gathered = g.gather_u64(10 + g.rank() as u64);
                        let all = all_agree(&g, true);
                        let one_says_no = all_agree(&g, g.rank() != 1);
                        (sum, b, gathered, all, one_says_no)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (sum, b, gathered, all, one_says_no) in results {
            assert_eq!(sum, vec![3.0, 3.0, 1.5]);
            assert_eq!(b, vec![2.0, 2.0]);
            assert_eq!(gathered, vec![10, 11, 12]);
            assert!(all && !one_says_no);
        }
    }
}
