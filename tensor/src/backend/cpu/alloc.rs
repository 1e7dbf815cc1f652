//! The process allocator's settings for training on the CPU.
//!
//! A training step allocates and frees hundreds of activation and gradient
//! buffers of a few to a few hundred megabytes. Glibc's `malloc` serves
//! large requests (above a threshold that adapts up to 32 MiB) with a fresh
//! `mmap` and unmaps them again on `free`, so every step page-faults its
//! buffers back in and the kernel zeroes every page first. For ResNet-18 at
//! width 64 that was 14 s of system time in a 41 s benchmark, and the step
//! ran 15% slower than with the buffers kept.
//!
//! [`reuse_freed_memory`] switches that off for the whole process: every
//! request is served from `malloc`'s heap, and freed memory stays there for
//! the next step instead of going back to the kernel. The resident memory
//! then stays at the peak of a step, which a training run reaches every
//! step anyway. It is a process-wide choice, so the library never makes it
//! on its own: programs that train (the `byol` command, the benchmarks)
//! call it once at start.

/// Keeps freed memory in the allocator for reuse rather than returning it
/// to the kernel (see the [module docs](self)). Returns whether the
/// setting took effect: on glibc (Linux) it does; elsewhere it does
/// nothing and returns `false`.
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocator parameters; it is
        // safe to call at any time from any thread.
        unsafe {
            // No request is served by mmap: all come from the heap, whose
            // freed chunks are reused.
            let no_mmap = libc::mallopt(libc::M_MMAP_MAX, 0) == 1;
            // Never give the heap's free top back to the kernel (the
            // largest threshold the parameter can hold, 2 GiB).
            let no_trim = libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1;
            no_mmap && no_trim
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    /// On glibc both settings are accepted, and large buffers still
    /// allocate, fill and free correctly afterwards.
    #[test]
    fn setting_takes_effect_on_glibc_and_memory_still_works() {
        let took = super::reuse_freed_memory();
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        for round in 0..3 {
            let big = vec![round as f32; 40 << 20 >> 2];
            assert!(big.iter().all(|&v| v == round as f32));
        }
    }
}
