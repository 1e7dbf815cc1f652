//! Where a training step's time goes, op by op: an opt-in timer on the
//! tape, the counterpart of `torch.profiler`'s table for comparing a step
//! with PyTorch's.
//!
//! [`start`] begins collecting on the calling thread; [`finish`] stops and
//! returns an [`OpTimes`] table. In between, every tape on this thread
//! notes the time at each node it records and each backward rule it runs:
//!
//! * **forward**: an op's forward time is the time from the previous node
//!   recorded (or the tape's creation) to its own. An op computes its value
//!   and then records its node, so this is its computation plus whatever
//!   ran between the two ops (model code, a parameter put on the tape:
//!   leaves get their own rows, `param` and `leaf`).
//! * **backward**: the op's backward rule, timed around its call. The sums
//!   of gradients that meet at a value used twice (a residual connection)
//!   are the row `(gradient sums)`, the additions into parameters'
//!   gradients `(parameter gradients)`.
//!
//! The times are wall time on the calling thread. On the CPU an op returns
//! when its threads are done, so its row holds its work; on a GPU ops only
//! queue work, so the rows show the host's side alone. Off (the default),
//! the tape's cost is one thread-local flag read per node.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

thread_local! {
    /// Whether a profile is being collected on this thread.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The rows so far and the time of the last mark.
    static COLLECTED: RefCell<Collector> = RefCell::new(Collector::default());
}

/// One op's times over the profiled span.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRow {
    /// The op's name as recorded on the tape (`conv2d`, `batch_norm`, ...).
    pub op: &'static str,
    /// How many nodes of this op were recorded.
    pub calls: usize,
    /// Time spent computing them (see the [module docs](self)).
    pub forward: Duration,
    /// Time spent in their backward rules.
    pub backward: Duration,
}

impl OpRow {
    /// Forward and backward together.
    pub fn total(&self) -> Duration {
        self.forward + self.backward
    }
}

/// The table [`finish`] returns: one row per op, the largest total first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpTimes {
    rows: Vec<OpRow>,
}

impl OpTimes {
    /// The rows, the largest total first.
    pub fn rows(&self) -> &[OpRow] {
        &self.rows
    }

    /// The row of `op`, if any node of it was recorded or run backward.
    pub fn get(&self, op: &str) -> Option<&OpRow> {
        self.rows.iter().find(|r| r.op == op)
    }

    /// The time of every row together.
    pub fn total(&self) -> Duration {
        self.rows.iter().map(OpRow::total).sum()
    }
}

impl fmt::Display for OpTimes {
    /// A table of milliseconds: op, calls, forward, backward, total and its
    /// share of the whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let whole = ms(self.total());
        writeln!(
            f,
            "{:>24} {:>6} {:>10} {:>10} {:>10} {:>6}",
            "op", "calls", "fwd ms", "bwd ms", "total ms", "share"
        )?;
        for r in &self.rows {
            let share = if whole > 0.0 {
                100.0 * ms(r.total()) / whole
            } else {
                0.0
            };
            writeln!(
                f,
                "{:>24} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>5.1}%",
                r.op,
                r.calls,
                ms(r.forward),
                ms(r.backward),
                ms(r.total()),
                share
            )?;
        }
        write!(
            f,
            "{:>24} {:>6} {:>10} {:>10} {:>10.2}",
            "all", "", "", "", whole
        )
    }
}

/// What is collected between [`start`] and [`finish`].
#[derive(Default)]
struct Collector {
    rows: Vec<OpRow>,
    last: Option<Instant>,
}

impl Collector {
    fn row(&mut self, op: &'static str) -> &mut OpRow {
        let i = match self.rows.iter().position(|r| r.op == op) {
            Some(i) => i,
            None => {
                self.rows.push(OpRow {
                    op,
                    calls: 0,
                    forward: Duration::ZERO,
                    backward: Duration::ZERO,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }
}

/// Starts collecting on this thread, forgetting any earlier collection.
pub fn start() {
    COLLECTED.with(|c| *c.borrow_mut() = Collector::default());
    ACTIVE.with(|a| a.set(true));
}

/// Stops collecting on this thread and returns what was collected since
/// [`start`] (an empty table if it was never called).
pub fn finish() -> OpTimes {
    ACTIVE.with(|a| a.set(false));
    let mut rows = COLLECTED.with(|c| std::mem::take(&mut c.borrow_mut().rows));
    rows.sort_by_key(|r| std::cmp::Reverse(r.total()));
    OpTimes { rows }
}

/// Whether a profile is being collected on this thread.
pub(crate) fn active() -> bool {
    ACTIVE.with(|a| a.get())
}

/// A new tape starts: the next node's forward time counts from now.
pub(crate) fn tape_started() {
    if active() {
        COLLECTED.with(|c| c.borrow_mut().last = Some(Instant::now()));
    }
}

/// A node of `op` was recorded: it gets the time since the last one.
pub(crate) fn recorded(op: &'static str) {
    if !active() {
        return;
    }
    let now = Instant::now();
    COLLECTED.with(|c| {
        let mut c = c.borrow_mut();
        let since = c.last.map_or(Duration::ZERO, |t| now - t);
        let row = c.row(op);
        row.calls += 1;
        row.forward += since;
        c.last = Some(now);
    });
}

/// Runs `work`, a part of the backward pass, adding its time to row
/// `row`'s backward column when a profile is being collected.
pub(crate) fn backward<R>(row: &'static str, work: impl FnOnce() -> R) -> R {
    if !active() {
        return work();
    }
    let start = Instant::now();
    let out = work();
    let took = start.elapsed();
    COLLECTED.with(|c| c.borrow_mut().row(row).backward += took);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Param, Tape};
    use tensor::{Device, Tensor};

    fn a_step() {
        let dev = Device::Cpu;
        let w = Param::new("w", Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3], &dev));
        let tape = Tape::new();
        let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &dev));
        let wv = tape.param(&w);
        // x is used twice: its two gradients are summed.
        let loss = x.mul(&wv).relu().add(&x).sum_all();
        tape.backward(&loss);
    }

    /// Off by default: ops run and nothing is collected.
    #[test]
    fn nothing_is_collected_unless_started() {
        finish();
        a_step();
        assert!(finish().rows().is_empty());
    }

    /// Each op of a step gets a row with its calls; ops that ran backward
    /// and the two summing rows have backward time; the table's total is
    /// its rows' sum, and a new start forgets the last collection.
    #[test]
    fn a_step_gives_a_row_per_op() {
        start();
        a_step();
        a_step();
        let times = finish();
        for op in ["leaf", "param", "mul", "relu", "add", "sum_all"] {
            let row = times
                .get(op)
                .unwrap_or_else(|| panic!("no row {op}: {times}"));
            assert_eq!(row.calls, 2, "{op}");
        }
        for op in ["mul", "relu", "sum_all"] {
            assert!(times.get(op).unwrap().backward > Duration::ZERO, "{op}");
        }
        assert!(times.get("(gradient sums)").is_some(), "{times}");
        assert!(times.get("(parameter gradients)").is_some(), "{times}");
        let sum: Duration = times.rows().iter().map(OpRow::total).sum();
        assert_eq!(times.total(), sum);
        assert!(times
            .rows()
            .windows(2)
            .all(|p| p[0].total() >= p[1].total()));
        assert!(times.to_string().contains("sum_all"));

        start();
        a_step();
        assert_eq!(finish().get("mul").unwrap().calls, 1);
    }
}
