//! # rng: the workspace's one random number generator
//!
//! Every random draw of the project comes from here: the initial weights
//! (`tensor`, `models`), the views of each image and the order of each
//! epoch (`augment`, `byol`), the probes' mini-batches (`byol::eval`). A
//! seed must give the same stream on every machine and with every version
//! of every dependency, because a checkpoint is resumed by replaying
//! seeds, and the tests compare trained numbers bit for bit. So the
//! generator is written out here rather than borrowed from a crate whose
//! algorithm may change, and it is written once.
//!
//! Two well-known public algorithms:
//!
//! * **SplitMix64** (Steele, Lea and Flood 2014, the generator of Java's
//!   `SplittableRandom`) turns any `u64` into a well-mixed `u64`. It
//!   derives seeds ([`seed_for`], [`fold`]) and fills the generator's state.
//!   One step adds the "golden gamma" `0x9E3779B97F4A7C15` to a counter and
//!   scrambles the sum with two xor-shift-multiply rounds ([`mix64`]).
//! * **xoshiro256++** (Blackman and Vigna 2018) is the generator itself
//!   ([`Rng`]): 256 bits of state, period 2^256 - 1, fast, and statistically
//!   strong for simulation.
//!
//! On top of the raw 64-bit draws: uniform floats (the top 24 or 53 bits),
//! a coin ([`Rng::chance`]), an unbiased integer below `n` ([`Rng::below`]),
//! a Fisher-Yates shuffle and a normal draw by Box-Muller.
//!
//! ```
//! use rng::{seed_for, Rng};
//!
//! // Image 7 of epoch 3 of a run seeded with 42 always draws the same numbers.
//! let mut a = Rng::from_seed(seed_for(42, 3, 7));
//! let mut b = Rng::from_seed(seed_for(42, 3, 7));
//! assert_eq!(a.next_u64(), b.next_u64());
//! let x = a.uniform(-0.4, 0.4);
//! assert!((-0.4..=0.4).contains(&x));
//! ```

#![warn(missing_docs)]

/// The increment of SplitMix64: 2^64 divided by the golden ratio, made odd.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: scrambles `z` into a well-mixed number.
///
/// `z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31`.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One step of SplitMix64: advances `state` by the golden gamma and returns
/// the mixed value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// Folds `value` into the seed `h`: `mix64((h ^ value) + g)`. Seeds that
/// differ in `h` or in `value` come out as unrelated numbers.
pub fn fold(h: u64, value: u64) -> u64 {
    mix64((h ^ value).wrapping_add(GOLDEN_GAMMA))
}

/// The seed of one image's generator in one epoch of one run.
///
/// Each input is folded in with a SplitMix64 step, so seeds of neighbouring
/// images, epochs or runs are unrelated numbers:
///
/// ```text
/// h = mix(run_seed + g);  h = mix(h ^ epoch + g);  h = mix(h ^ image_index + g)
/// ```
///
/// (`g` the golden gamma, `mix` the SplitMix64 output function.)
pub fn seed_for(run_seed: u64, epoch: u64, image_index: u64) -> u64 {
    let h = mix64(run_seed.wrapping_add(GOLDEN_GAMMA));
    fold(fold(h, epoch), image_index)
}

/// The xoshiro256++ generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is four successive SplitMix64 outputs from
    /// `seed` (the seeding the algorithm's authors recommend; it never gives
    /// the all-zero state, the one state xoshiro must avoid).
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// A generator restored from [`Rng::state`]. An all-zero state (which
    /// xoshiro cannot leave) is replaced by the state of `from_seed(0)`.
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            Rng::from_seed(0)
        } else {
            Rng { s }
        }
    }

    /// The full state, for a checkpoint.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// The next 64 random bits (xoshiro256++):
    ///
    /// ```text
    /// out = rotl(s0 + s3, 23) + s0
    /// t = s1 << 17;  s2 ^= s0;  s3 ^= s1;  s1 ^= s2;  s0 ^= s3;  s2 ^= t;  s3 = rotl(s3, 45)
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let out = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        let s2 = s2 ^ t;
        let s3 = s3.rotate_left(45);
        self.s = [s0, s1, s2, s3];
        out
    }

    /// A uniform `f64` in `[0, 1)`: the top 53 bits times 2^-53.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform `f32` in `[0, 1)`: the top 24 bits times 2^-24 (every
    /// value is exactly representable as an `f32`).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform `f32` in `[lo, hi]` (`lo + (hi - lo) u`, `u` uniform in `[0, 1)`).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// `true` with probability `p`: `u < p`. So `p <= 0` is never and
    /// `p >= 1` is always.
    pub fn chance(&mut self, p: f32) -> bool {
        self.next_f32() < p
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's
    /// multiply-and-reject method: the high half of `x * n` is uniform once
    /// the few `x` whose low half falls below `2^64 mod n` are redrawn).
    ///
    /// # Panics
    ///
    /// If `n` is 0 (there is no integer in `0..0`): a bug in the caller.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below needs n > 0");
        let threshold = n.wrapping_neg() % n; // 2^64 mod n
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher-Yates: for `i` from the end, swap
    /// item `i` with a uniformly chosen item in `0..=i`).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A standard normal draw (mean 0, variance 1) by the Box-Muller
    /// transform, `sqrt(-2 ln u1) cos(2π u2)`, with `u1` in `(0, 1]` so the
    /// logarithm is finite.
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.next_f32() as f64;
        let u2 = self.next_f32() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_outputs_for_seed_zero() {
        // The first outputs of the reference C implementation seeded with 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(&mut s), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn the_stream_of_a_seed_is_pinned() {
        // These numbers are what every seeded result of the project was
        // computed with: a change here changes every weight and view.
        let mut r = Rng::from_seed(0);
        assert_eq!(r.next_u64(), 0x5317_5D61_490B_23DF);
        assert_eq!(r.next_u64(), 0x61DA_6F3D_C380_D507);
        assert_eq!(seed_for(0, 0, 0), 0x2382_75BC_38FC_BE91);
    }

    #[test]
    fn same_seed_same_stream_and_state_round_trips() {
        let mut a = Rng::from_seed(42);
        let mut b = Rng::from_seed(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::from_state(a.state());
        assert_eq!(a.next_u64(), c.next_u64());
        assert_ne!(Rng::from_seed(1).next_u64(), Rng::from_seed(2).next_u64());
        assert_eq!(Rng::from_state([0; 4]), Rng::from_seed(0));
    }

    #[test]
    fn seeds_differ_in_each_input() {
        let base = seed_for(7, 3, 11);
        assert_ne!(base, seed_for(8, 3, 11));
        assert_ne!(base, seed_for(7, 4, 11));
        assert_ne!(base, seed_for(7, 3, 12));
        // Swapping epoch and index must not give the same seed.
        assert_ne!(seed_for(0, 1, 0), seed_for(0, 0, 1));
        assert_eq!(base, seed_for(7, 3, 11));
        assert_ne!(fold(base, 1), fold(base, 2));
    }

    #[test]
    fn floats_are_in_range_with_the_right_mean() {
        let mut r = Rng::from_seed(5);
        let n = 20_000;
        let (mut sum32, mut sum64) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let x = r.next_f32();
            assert!((0.0..1.0).contains(&x));
            let y = r.uniform(-0.4, 0.4);
            assert!((-0.4..=0.4).contains(&y));
            let z = r.next_f64();
            assert!((0.0..1.0).contains(&z));
            sum32 += x as f64;
            sum64 += z;
        }
        // Mean 1/2, standard error sqrt(1/12 / n) ~ 0.002.
        assert!((sum32 / n as f64 - 0.5).abs() < 0.01);
        assert!((sum64 / n as f64 - 0.5).abs() < 0.01);
    }

    #[test]
    fn below_covers_its_range_evenly_and_shuffle_permutes() {
        let mut r = Rng::from_seed(9);
        let mut counts = [0u32; 6];
        for _ in 0..6000 {
            counts[r.below(6) as usize] += 1;
        }
        // Each count ~ Binomial(6000, 1/6): mean 1000, sd ~29.
        assert!(
            counts.iter().all(|&c| (880..1120).contains(&c)),
            "{counts:?}"
        );
        let mut v = [0, 1, 2, 3, 4, 5, 6, 7];
        r.shuffle(&mut v);
        let mut sorted = v;
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_ne!(v, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn chance_is_exact_at_zero_and_one() {
        let mut r = Rng::from_seed(3);
        for _ in 0..1000 {
            assert!(r.chance(1.0));
            assert!(!r.chance(0.0));
        }
    }

    #[test]
    fn normal_draws_have_mean_zero_and_variance_one() {
        let mut r = Rng::from_seed(1);
        let n = 200_000;
        let z: Vec<f64> = (0..n).map(|_| r.normal() as f64).collect();
        assert!(z.iter().all(|x| x.is_finite()));
        let m = z.iter().sum::<f64>() / n as f64;
        let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) ~ 2.2e-3 for the mean, sqrt(2/n) ~
        // 3.2e-3 for the variance.
        assert!(m.abs() < 1e-2, "normal mean {m}");
        assert!((v - 1.0).abs() < 2e-2, "normal variance {v}");
    }
}
