//! Solarize: invert the bright half of the tones. BYOL's Table 6: p = 0.0 on
//! view 1 and p = 0.2 on view 2.
//!
//! On values in `[0, 1]`: `x < 0.5 ? x : 1 - x`. Dark pixels are kept, bright
//! ones are inverted, so the result lies in `[0, 0.5]`.

/// The solarize threshold, on the `[0, 1]` scale.
pub const THRESHOLD: f32 = 0.5;

/// Solarizes every value of `data` in place.
pub fn solarize(data: &mut [f32]) {
    for v in data {
        if *v >= THRESHOLD {
            *v = 1.0 - *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solarize_is_exact() {
        let mut x = [0.0, 0.25, 0.4999, 0.5, 0.75, 1.0];
        solarize(&mut x);
        assert_eq!(x, [0.0, 0.25, 0.4999, 0.5, 0.25, 0.0]);
    }
}
