//! Which vector instructions the CPU backend's own loops are compiled for,
//! chosen when the program runs.
//!
//! The workspace builds for baseline x86-64 (SSE2: four `f32` lanes), so
//! that one binary runs on any x86-64 machine. The loops written here
//! (elementwise maps, broadcasts, batch-norm sums) are plain Rust that the
//! compiler vectorises; on a machine with AVX2 they could run eight lanes
//! wide, with AVX-512 sixteen. So each such loop is compiled three times:
//! as is, inside a function marked `#[target_feature(enable = "avx2,fma")]`
//! and inside one marked for AVX-512 ([`vectorised`] hands a closure to one
//! of them; the loop, inlined there, is compiled with that function's
//! instructions). Which copy runs is decided once, by asking the CPU what
//! it has (`is_x86_feature_detected!`).
//!
//! **Same numbers on every level.** The compiler never reorders or fuses
//! floating-point arithmetic on its own (no `a·b + c` becomes an FMA, no
//! sum is re-associated), so a loop vectorised eight or sixteen wide
//! computes exactly what the baseline copy computes, lane by lane. The
//! tests check that bit for bit on every level this CPU has.
//!
//! `BYOL_CPU_SIMD=baseline|avx2|avx512|auto` overrides the choice (to
//! measure one level against another with the same binary); asking for a
//! level this CPU lacks is an error, since its instructions would fault.
//! The GEMM is not affected: the `gemm` crate makes its own choice of
//! kernels at run time.

use std::sync::OnceLock;

/// A level of vector instructions, from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// What every x86-64 (or any other) CPU has: SSE2 on x86-64.
    Baseline,
    /// AVX2 with fused multiply-add: 8 `f32` lanes.
    Avx2,
    /// AVX-512 (F and VL) on top of AVX2: 16 `f32` lanes.
    Avx512,
}

impl Isa {
    /// Every level, narrowest first.
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The level's name, as `BYOL_CPU_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run code compiled for the level.
    pub fn supported(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The widest level this CPU supports.
    pub fn widest() -> Isa {
        *Isa::ALL
            .iter()
            .rev()
            .find(|isa| isa.supported())
            .unwrap_or(&Isa::Baseline)
    }
}

/// What a value of `BYOL_CPU_SIMD` asks for: `Some(level)`, or `None`
/// (unset, empty or `auto`) for the widest the CPU has; an unknown value
/// is an error naming the variable and the choices.
fn parse_setting(value: Option<&str>) -> Result<Option<Isa>, String> {
    let value = match value.map(str::trim) {
        None | Some("") | Some("auto") => return Ok(None),
        Some(v) => v,
    };
    Isa::ALL
        .into_iter()
        .find(|isa| isa.name() == value)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "BYOL_CPU_SIMD={value:?}: expected 'baseline', 'avx2', 'avx512' or 'auto' \
                 (or unset it to use the widest this CPU has)"
            )
        })
}

/// The level to run: the setting, checked against the CPU, or the widest.
fn resolve(setting: Option<Isa>) -> Result<Isa, String> {
    match setting {
        None => Ok(Isa::widest()),
        Some(isa) if isa.supported() => Ok(isa),
        Some(isa) => Err(format!(
            "BYOL_CPU_SIMD={:?}: this CPU lacks those instructions (the widest it has is \
             '{}'); ask for that or 'baseline', or unset the variable",
            isa.name(),
            Isa::widest().name()
        )),
    }
}

/// `BYOL_CPU_SIMD`, read and checked once.
fn setting() -> &'static Result<Isa, String> {
    static SETTING: OnceLock<Result<Isa, String>> = OnceLock::new();
    SETTING.get_or_init(|| {
        parse_setting(std::env::var("BYOL_CPU_SIMD").ok().as_deref()).and_then(resolve)
    })
}

/// Whether `BYOL_CPU_SIMD` holds a value this module can honour on this
/// CPU; the error names the variable, the value and the choices.
/// [`crate::Device::from_name`] checks it, so a program that opens its
/// device that way reports it before any work (a kernel run without that
/// check panics with the same message).
pub fn check_setting() -> Result<(), String> {
    setting().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The level the loops run at: a level forced by a test, else
/// `BYOL_CPU_SIMD`, else the widest this CPU has.
pub fn active() -> Isa {
    #[cfg(test)]
    if let Some(isa) = forced::get() {
        return isa;
    }
    *setting().as_ref().unwrap_or_else(|why| panic!("{why}"))
}

/// Runs `f` compiled for the [`active`] level.
///
/// `f` should be small and call the loop (or hold it): what the compiler
/// inlines into the chosen copy is compiled with its instructions; a call
/// it does not inline runs at the baseline.
#[inline(always)]
pub fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    run_at(active(), f)
}

/// Runs `f` compiled for `isa`, which must be supported (see
/// [`Isa::supported`]; [`active`] always is).
#[inline(always)]
fn run_at<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    match isa {
        Isa::Baseline => f(),
        // SAFETY: `isa` is supported by this CPU (checked when the
        // setting was resolved, or by the test that forced it), so the
        // instructions these copies are compiled with exist.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { on_avx2(f) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { on_avx512(f) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => f(),
    }
}

/// `f`, compiled with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn on_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f`, compiled with AVX-512 (F, VL) as well as AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn on_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// A level forced for the duration of a test, so the tests can run each
/// kernel at every level this CPU has and compare.
#[cfg(test)]
pub(crate) mod forced {
    use super::Isa;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Mutex;

    /// 0: nothing forced; else 1 + the level's index in [`Isa::ALL`].
    static FORCED: AtomicU8 = AtomicU8::new(0);
    /// One forcing test at a time (the level is process-wide).
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// The forced level, if any.
    pub fn get() -> Option<Isa> {
        match FORCED.load(Ordering::SeqCst) {
            0 => None,
            i => Some(Isa::ALL[i as usize - 1]),
        }
    }

    /// `f()` once for each level this CPU supports, with that level
    /// forced, narrowest first: `(level, f())` for each.
    pub fn at_every_level<R>(mut f: impl FnMut() -> R) -> Vec<(Isa, R)> {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (i, isa) in Isa::ALL.into_iter().enumerate() {
            if isa.supported() {
                FORCED.store(i as u8 + 1, Ordering::SeqCst);
                out.push((isa, f()));
            }
        }
        FORCED.store(0, Ordering::SeqCst);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_ones_say_what_is_expected() {
        assert_eq!(parse_setting(None), Ok(None));
        assert_eq!(parse_setting(Some(" auto ")), Ok(None));
        assert_eq!(parse_setting(Some("")), Ok(None));
        assert_eq!(parse_setting(Some("baseline")), Ok(Some(Isa::Baseline)));
        assert_eq!(parse_setting(Some("avx2")), Ok(Some(Isa::Avx2)));
        assert_eq!(parse_setting(Some("avx512")), Ok(Some(Isa::Avx512)));
        let why = parse_setting(Some("avx-512")).unwrap_err();
        assert!(why.starts_with("BYOL_CPU_SIMD=\"avx-512\": expected 'baseline', 'avx2'"));
    }

    #[test]
    fn a_level_the_cpu_lacks_is_refused_and_auto_takes_the_widest() {
        assert_eq!(resolve(None), Ok(Isa::widest()));
        assert_eq!(resolve(Some(Isa::Baseline)), Ok(Isa::Baseline));
        for isa in Isa::ALL {
            match resolve(Some(isa)) {
                Ok(got) => assert!(isa.supported() && got == isa),
                Err(why) => {
                    assert!(!isa.supported());
                    assert!(why.contains("this CPU lacks those instructions"), "{why}");
                }
            }
        }
        // The levels nest: a CPU with a level has every narrower one.
        let widest = Isa::widest();
        assert!(Isa::ALL.iter().all(|&i| i.supported() == (i <= widest)));
    }

    #[test]
    fn every_level_computes_the_same_bits() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let runs = forced::at_every_level(|| {
            vectorised(|| {
                x.iter()
                    .map(|&v| (v * 1.5 + 0.25).max(0.0) / (v * v + 1.0).sqrt())
                    .collect::<Vec<f32>>()
            })
        });
        assert_eq!(runs[0].0, Isa::Baseline);
        for (isa, got) in &runs[1..] {
            assert_eq!(got, &runs[0].1, "{isa:?} differs from the baseline");
        }
    }
}
