//! `Timed`: any group, with the time spent in each kind of operation
//! counted, so a run can say how much of a step went to talking.
//!
//! The time of a sum includes waiting for the slowest rank to arrive, so
//! it measures what the collective costs this rank: transfer, latency and
//! imbalance together.

use crate::Collective;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kind of operation's calls, values and time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// How many calls.
    pub calls: u64,
    /// How many values they carried (this rank's buffer lengths).
    pub values: u64,
    /// The time spent in them.
    pub time: Duration,
}

/// The tallies of a [`Timed`] group, by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tallies {
    /// [`Collective::sum_f32`]: in training, the gradient average.
    pub sum_f32: Tally,
    /// [`Collective::sum_f64`]: batch-norm statistics, the step's numbers
    /// and every agreement.
    pub sum_f64: Tally,
    /// Broadcasts, gathers and barriers.
    pub other: Tally,
}

/// A group whose operations are timed (see the module docs).
pub struct Timed {
    inner: Arc<dyn Collective>,
    tallies: Mutex<Tallies>,
}

impl Timed {
    /// `inner`, timed from now.
    pub fn new(inner: Arc<dyn Collective>) -> Timed {
        Timed {
            inner,
            tallies: Mutex::new(Tallies::default()),
        }
    }

    /// What was counted so far.
    pub fn tallies(&self) -> Tallies {
        *self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count<R>(
        &self,
        which: fn(&mut Tallies) -> &mut Tally,
        values: usize,
        f: impl FnOnce() -> R,
    ) -> R {
        let start = Instant::now();
        let out = f();
        let spent = start.elapsed();
        let mut t = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let tally = which(&mut t);
        tally.calls += 1;
        tally.values += values as u64;
        tally.time += spent;
        out
    }
}

impl Collective for Timed {
    fn rank(&self) -> usize {
        self.inner.rank()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let n = values.len();
        self.count(|t| &mut t.sum_f32, n, || self.inner.sum_f32(values))
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let n = values.len();
        self.count(|t| &mut t.sum_f64, n, || self.inner.sum_f64(values))
    }

    fn broadcast_f32(&self, values: &mut [f32], root: usize) {
        let n = values.len();
        self.count(
            |t| &mut t.other,
            n,
            || self.inner.broadcast_f32(values, root),
        )
    }

    fn gather_u64(&self, value: u64) -> Vec<u64> {
        self.count(|t| &mut t.other, 1, || self.inner.gather_u64(value))
    }

    fn barrier(&self) {
        self.count(|t| &mut t.other, 0, || self.inner.barrier())
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn abort(&self, code: i32) -> ! {
        self.inner.abort(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Local;

    #[test]
    fn every_operation_is_counted_and_still_done() {
        let seen: Vec<(Tallies, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = Local::group(2)
                .into_iter()
                .map(|g| {
                    s.spawn(move || {
                        let t = Timed::new(Arc::new(g));
                        let mut v = vec![1.0f32; 5];
                        t.sum_f32(&mut v);
                        let mut w = [2.0f64; 3];
                        t.sum_f64(&mut w);
                        t.sum_f64(&mut w);
                        t.gather_u64(1);
                        t.barrier();
                        (t.tallies(), v)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (tallies, v) in seen {
            assert_eq!(v, vec![2.0; 5]);
            assert_eq!((tallies.sum_f32.calls, tallies.sum_f32.values), (1, 5));
            assert_eq!((tallies.sum_f64.calls, tallies.sum_f64.values), (2, 6));
            assert_eq!(tallies.other.calls, 2);
        }
    }
}
