//! Data parallelism: `P` processes (ranks) train one model, each on its
//! slice of every global batch, and stay one model.
//!
//! ```text
//! global batch of B images (the same order on every rank: seeded by epoch)
//!   rank r takes images [r·B/P, (r+1)·B/P) and makes their two views
//!   (seeded per image, so exactly the views one process would make)
//! forward + backward on the slice                     (ByolStep::forward_backward)
//!   ── sum of [loss, collapse, a NaN?, a failed device?, stop asked?] over ranks
//!   ── every trained gradient: summed over ranks in one flat buffer, ÷ P
//! optimiser step + moving average                     (ByolStep::update)
//!   identical on every rank: same weights, same averaged gradients
//! ```
//!
//! So after every step the replicas hold the same weights with no more
//! communication than one gradient sum (plus a few numbers). Rank 0's state
//! is broadcast at the start (and after a resume), and at the end of every
//! epoch a hash of every rank's state is compared, so a replica that drifted
//! stops the run instead of training a different model in silence.
//!
//! Every decision to leave the step loop (a NaN, a failed device, Ctrl-C on
//! any rank) rides on the step's one sum, so all ranks decide together and
//! none waits forever in a collective another has left.
//!
//! Batch norm takes its statistics over the whole global batch
//! (`TrainConfig::sync_batch_norm`, the default; see `autograd::sync`), as
//! the paper's code does across its 512 TPU cores, so the running
//! statistics come out the same on every rank. Without it each rank
//! normalises by its own slice and rank 0's running statistics are
//! broadcast after every step, as PyTorch's DistributedDataParallel does.

use crate::step::ByolStep;
use autograd::Param;
use collective::Collective;
use tensor::{Device, Tensor};

/// The slice of a global batch that rank `rank` of `size` trains on:
/// `batch[rank·B/size .. (rank+1)·B/size]` (`B` a multiple of `size`).
pub fn slice_of(batch: &[usize], rank: usize, size: usize) -> &[usize] {
    let per = batch.len() / size.max(1);
    &batch[rank * per..(rank + 1) * per]
}

/// Replaces every parameter's gradient by its average over the ranks: one
/// flat buffer (the gradients in parameter order, a missing one as zeros),
/// summed over the ranks, divided by `P`, and put back. Returns the time
/// spent copying the gradients off the device into the buffer and back (on
/// the CPU backend, plain memory copies; on a GPU, transfers), the part of
/// the exchange that is not the sum itself.
pub fn average_gradients(
    group: &dyn Collective,
    params: &[Param],
    device: &Device,
) -> std::time::Duration {
    let gather = std::time::Instant::now();
    let mut flat: Vec<f32> = Vec::new();
    for p in params {
        match p.grad() {
            Some(g) => flat.extend(g.to_vec()),
            None => flat.extend(std::iter::repeat_n(0.0, p.shape().iter().product())),
        }
    }
    let copying = gather.elapsed();
    group.sum_f32(&mut flat);
    let scatter = std::time::Instant::now();
    let scale = 1.0 / group.size() as f32;
    let mut at = 0;
    for p in params {
        let shape = p.shape();
        let n: usize = shape.iter().product();
        let g: Vec<f32> = flat[at..at + n].iter().map(|x| x * scale).collect();
        p.set_grad(Tensor::from_vec(g, &shape, device));
        at += n;
    }
    device.synchronize();
    copying + scatter.elapsed()
}

/// Makes every rank's networks and optimiser state rank 0's: every tensor
/// in one flat buffer, broadcast, and put back.
pub fn broadcast_state(group: &dyn Collective, step: &mut ByolStep) -> crate::Result<()> {
    if group.size() == 1 {
        return Ok(());
    }
    let device = step.device();
    let state = step.nets.state();
    let mut flat: Vec<f32> = state.iter().flat_map(|(_, p)| p.value().to_vec()).collect();
    let optimizer = step.optimizer().state();
    flat.extend(optimizer.iter().flat_map(|(_, t)| t.to_vec()));
    group.broadcast_f32(&mut flat, 0);
    let mut at = 0;
    let mut take = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let t = Tensor::from_vec(flat[at..at + n].to_vec(), shape, &device);
        at += n;
        t
    };
    for (_, p) in &state {
        p.set_value(take(&p.shape()));
    }
    let loaded = optimizer
        .iter()
        .map(|(k, t)| (k.clone(), take(t.shape())))
        .collect();
    step.load_optimizer_state(&loaded)
}

/// Makes every rank's batch-norm buffers (running statistics) rank 0's,
/// after a step without synchronised batch norm, where each rank's come
/// from its own slice (PyTorch's DistributedDataParallel does the same).
pub fn broadcast_buffers(group: &dyn Collective, step: &ByolStep) {
    let buffers = step.nets.buffers();
    let device = step.device();
    let mut flat: Vec<f32> = buffers
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect();
    group.broadcast_f32(&mut flat, 0);
    let mut at = 0;
    for (_, p) in &buffers {
        let shape = p.shape();
        let n: usize = shape.iter().product();
        p.set_value(Tensor::from_vec(flat[at..at + n].to_vec(), &shape, &device));
        at += n;
    }
}

/// A 64-bit hash (FNV-1a) of every value of the networks (parameters and
/// running statistics) and of the optimiser's buffers: equal on every rank
/// when the replicas are bit for bit the same, and (but for a one in 2⁶⁴
/// collision) only then.
pub fn state_hash(step: &ByolStep) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut eat = |t: &Tensor| {
        for x in t.to_vec() {
            for b in x.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(PRIME);
            }
        }
    };
    for (_, p) in step.nets.state() {
        eat(&p.value());
    }
    for (_, t) in step.optimizer().state() {
        eat(&t);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rank_takes_its_own_contiguous_slice() {
        let batch: Vec<usize> = (10..22).collect();
        assert_eq!(slice_of(&batch, 0, 3), &[10, 11, 12, 13]);
        assert_eq!(slice_of(&batch, 2, 3), &[18, 19, 20, 21]);
        assert_eq!(slice_of(&batch, 0, 1), batch.as_slice());
    }
}
