//! Principal component analysis (PCA) down to two dimensions: an analysis
//! of embeddings, to draw an encoder's high-dimensional features as a 2-D
//! scatter plot (`byol demo` draws the test images' features of a random
//! and a BYOL encoder side by side with it).
//!
//! The steps, all in `f64`:
//!
//! 1. Centre: subtract the mean row from every row.
//! 2. Covariance: the `d x d` matrix `C = X^T X / (n - 1)` of the centred rows.
//! 3. Directions: the two unit vectors along which the rows vary most are the
//!    eigenvectors of `C` with the two largest eigenvalues. They are found by
//!    *orthogonal iteration*, the two-vector form of power iteration:
//!    multiply both vectors by `C`, which stretches each one towards the
//!    dominant directions, make them orthonormal again (Gram-Schmidt), and
//!    repeat until they span a plane that `C` maps into itself. A final
//!    2 x 2 eigen-decomposition inside that plane picks the two directions
//!    and their order.
//! 4. Project: each centred row's dot products with the two directions are
//!    its 2-D coordinates.
//!
//! Each direction is only defined up to its sign, so the sign is fixed by a
//! rule: the largest-magnitude coordinate of a direction is made positive.
//! The start vectors come from a fixed seed, so the result is the same on
//! every run.

/// Most multiplications by the covariance before giving up on a tighter
/// fit; the plane is then as good as it got, which is plenty for a plot.
const MAX_ITERATIONS: usize = 500;

/// Stop when `|C Q - Q H|` is this small relative to `|H|`, where `Q` holds
/// the two vectors and `H = Q^T C Q`.
const TOLERANCE: f64 = 1e-10;

/// A second eigenvalue below this fraction of the first counts as zero: the
/// data has no second direction (it lies on a line).
const NEGLIGIBLE: f64 = 1e-10;

/// Projects `n` rows of `d` features (row-major in `features`) onto their
/// first two principal components, returning one `[pc1, pc2]` per row.
///
/// Missing components are zeros rather than NaN: with fewer than two rows,
/// no features or no variance everything is zero, and data that varies
/// along one direction only (for example `d == 1`) has a zero second
/// component. Non-finite feature values are treated as 0.
///
/// # Panics
///
/// If `features.len() != n * d`.
pub fn pca_2d(features: &[f32], n: usize, d: usize) -> Vec<[f32; 2]> {
    assert_eq!(
        features.len(),
        n * d,
        "pca_2d: expected n * d = {n} * {d} feature values"
    );
    let centred = centre_rows(features, n, d);
    let covariance = covariance(&centred, n, d);
    let [first, second] = top_two_directions(&covariance, d);
    let mut out = Vec::with_capacity(n);
    for row in centred.chunks_exact(d.max(1)).take(n) {
        out.push([dot(row, &first) as f32, dot(row, &second) as f32]);
    }
    // With d == 0 there are no chunks to walk; every row projects to 0.
    out.resize(n, [0.0, 0.0]);
    out
}

/// The rows as `f64` with the column means subtracted.
fn centre_rows(features: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut rows: Vec<f64> = features
        .iter()
        .map(|&v| if v.is_finite() { v as f64 } else { 0.0 })
        .collect();
    if n == 0 {
        return rows;
    }
    let mut mean = vec![0.0; d];
    for row in rows.chunks_exact(d.max(1)) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    for row in rows.chunks_exact_mut(d.max(1)) {
        for (v, &m) in row.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    rows
}

/// The `d x d` covariance matrix (row-major) of rows that are already
/// centred. Only the upper triangle is summed; it is then mirrored.
fn covariance(centred: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    if d == 0 {
        return c;
    }
    for row in centred.chunks_exact(d) {
        for (i, &ri) in row.iter().enumerate() {
            if ri == 0.0 {
                continue;
            }
            // Row i of C, from column i on, gains ri * row[j].
            let c_row = &mut c[i * d + i..(i + 1) * d];
            for (cij, &rj) in c_row.iter_mut().zip(&row[i..]) {
                *cij += ri * rj;
            }
        }
    }
    let divisor = n.saturating_sub(1).max(1) as f64;
    for i in 0..d {
        for j in i..d {
            let v = c[i * d + j] / divisor;
            c[i * d + j] = v;
            c[j * d + i] = v;
        }
    }
    c
}

/// The unit eigenvectors of the symmetric `d x d` matrix `c` with the
/// largest and second-largest eigenvalue, signs fixed by
/// [`fix_sign`]. A direction that does not exist (zero eigenvalue) is
/// returned as a zero vector.
fn top_two_directions(c: &[f64], d: usize) -> [Vec<f64>; 2] {
    let zero = vec![0.0; d];
    let trace: f64 = (0..d).map(|i| c[i * d + i]).sum();
    // The trace is the total variance; zero (or garbage) means no direction.
    let has_variance = trace.is_finite() && trace > 0.0;
    if !has_variance {
        return [zero.clone(), zero];
    }
    if d == 1 {
        return [vec![1.0], zero];
    }

    // Two fixed pseudo-random start vectors, made orthonormal.
    let mut random = rng::Rng::from_seed(0);
    let mut q1: Vec<f64> = (0..d).map(|_| random.next_f64() * 2.0 - 1.0).collect();
    let mut q2: Vec<f64> = (0..d).map(|_| random.next_f64() * 2.0 - 1.0).collect();
    normalise(&mut q1);
    make_orthonormal_to(&mut q2, &q1);

    let mut iteration = 0;
    let (h11, h12, h22) = loop {
        let w1 = mat_vec(c, &q1);
        let w2 = mat_vec(c, &q2);
        // H = Q^T C Q, the matrix restricted to the plane of q1 and q2.
        let h11 = dot(&q1, &w1);
        let h12 = dot(&q1, &w2);
        let h22 = dot(&q2, &w2);
        // If C maps the plane into itself, C Q = Q H exactly.
        let mut residual = 0.0;
        for i in 0..d {
            let r1 = w1[i] - h11 * q1[i] - h12 * q2[i];
            let r2 = w2[i] - h12 * q1[i] - h22 * q2[i];
            residual += r1 * r1 + r2 * r2;
        }
        let size = h11 * h11 + 2.0 * h12 * h12 + h22 * h22;
        iteration += 1;
        if residual <= TOLERANCE * TOLERANCE * size || iteration >= MAX_ITERATIONS {
            break (h11, h12, h22);
        }
        // The next pair: C times the old pair, made orthonormal again.
        let mut next_q1 = w1;
        if normalise(&mut next_q1) {
            q1 = next_q1;
        }
        q2 = w2;
        make_orthonormal_to(&mut q2, &q1);
    };

    // Inside the plane, H = [[h11, h12], [h12, h22]] has eigenvectors at
    // angle theta and theta + 90 degrees, where tan(2 theta) = 2 h12 / (h11 - h22);
    // atan2 picks the theta whose vector has the larger eigenvalue.
    let theta = 0.5 * (2.0 * h12).atan2(h11 - h22);
    let (sin, cos) = theta.sin_cos();
    let mean = 0.5 * (h11 + h22);
    let spread = (0.25 * (h11 - h22) * (h11 - h22) + h12 * h12).sqrt();
    let (lambda1, lambda2) = (mean + spread, mean - spread);

    let mut first: Vec<f64> = (0..d).map(|i| cos * q1[i] + sin * q2[i]).collect();
    let mut second: Vec<f64> = (0..d).map(|i| -sin * q1[i] + cos * q2[i]).collect();
    if lambda1.is_nan() || lambda1 <= 0.0 {
        return [zero.clone(), zero];
    }
    fix_sign(&mut first);
    if lambda2 <= NEGLIGIBLE * lambda1 {
        second = zero;
    } else {
        fix_sign(&mut second);
    }
    [first, second]
}

/// Flips `v` if needed so that its largest-magnitude entry (the first one,
/// on ties) is positive.
fn fix_sign(v: &mut [f64]) {
    let mut biggest = 0;
    for (i, x) in v.iter().enumerate() {
        if x.abs() > v[biggest].abs() {
            biggest = i;
        }
    }
    if v.get(biggest).is_some_and(|&x| x < 0.0) {
        for x in v.iter_mut() {
            *x = -*x;
        }
    }
}

/// `c v` for a square row-major matrix `c`.
fn mat_vec(c: &[f64], v: &[f64]) -> Vec<f64> {
    let d = v.len();
    (0..d).map(|i| dot(&c[i * d..(i + 1) * d], v)).collect()
}

/// The dot product of two equally long vectors.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to length 1. Returns false, leaving `v` alone, if it is (close
/// to) the zero vector or not finite.
fn normalise(v: &mut [f64]) -> bool {
    let length = dot(v, v).sqrt();
    if !(length.is_finite() && length > 1e-300) {
        return false;
    }
    for x in v.iter_mut() {
        *x /= length;
    }
    true
}

/// Gram-Schmidt: removes from `v` its part along the unit vector `u`, then
/// scales it to length 1. If almost nothing is left (`v` was along `u`),
/// `v` becomes instead the coordinate axis on which `u` is smallest, made
/// orthonormal to `u` in the same way; that always works, because `u` has
/// at most 1 / sqrt(2) of its length along that axis when it has two or
/// more entries.
fn make_orthonormal_to(v: &mut [f64], u: &[f64]) {
    let before = dot(v, v).sqrt();
    remove_part_along(v, u);
    let after = dot(v, v).sqrt();
    if after > 1e-12 * before && normalise(v) {
        return;
    }
    let mut smallest = 0;
    for (i, x) in u.iter().enumerate() {
        if x.abs() < u[smallest].abs() {
            smallest = i;
        }
    }
    for (i, x) in v.iter_mut().enumerate() {
        *x = if i == smallest { 1.0 } else { 0.0 };
    }
    remove_part_along(v, u);
    normalise(v);
}

/// `v -= (v . u) u` for a unit vector `u`.
fn remove_part_along(v: &mut [f64], u: &[f64]) {
    let along = dot(v, u);
    for (x, &ux) in v.iter_mut().zip(u) {
        *x -= along * ux;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample variance of one output column.
    fn variance(points: &[[f32; 2]], column: usize) -> f64 {
        let n = points.len() as f64;
        let mean = points.iter().map(|p| p[column] as f64).sum::<f64>() / n;
        let squares: f64 = points
            .iter()
            .map(|p| (p[column] as f64 - mean).powi(2))
            .sum();
        squares / (n - 1.0)
    }

    /// `n` rows of independent Gaussians with the given standard deviations.
    fn anisotropic(n: usize, stds: &[f64], seed: u64) -> Vec<f32> {
        let mut rng = rng::Rng::from_seed(seed);
        let mut out = Vec::new();
        for _ in 0..n {
            for &s in stds {
                out.push((s * rng.normal() as f64) as f32);
            }
        }
        out
    }

    #[test]
    fn points_on_a_line_give_their_positions_and_no_second_component() {
        // Points offset + t * (1, 2, 0) / sqrt(5).
        let dir = [1.0 / 5f64.sqrt(), 2.0 / 5f64.sqrt(), 0.0];
        let offset = [5.0, -1.0, 2.0];
        let ts: Vec<f64> = (0..20)
            .map(|i| (i as f64 * 0.37).sin() * 4.0 + i as f64 * 0.1)
            .collect();
        let mut features = Vec::new();
        for &t in &ts {
            for k in 0..3 {
                features.push((offset[k] + t * dir[k]) as f32);
            }
        }
        let mean_t = ts.iter().sum::<f64>() / ts.len() as f64;
        let points = pca_2d(&features, ts.len(), 3);
        assert_eq!(points.len(), ts.len());
        for (p, &t) in points.iter().zip(&ts) {
            // The direction's largest coordinate (2 / sqrt 5) is positive,
            // so pc1 is t itself, centred, with the same sign.
            assert!((p[0] as f64 - (t - mean_t)).abs() < 1e-4, "{p:?} vs {t}");
            assert_eq!(p[1], 0.0, "{p:?}");
        }
    }

    #[test]
    fn the_first_component_has_more_variance_than_the_second() {
        let stds = [0.5, 4.0, 1.0, 2.0, 0.2, 0.7];
        let n = 400;
        let features = anisotropic(n, &stds, 7);
        let points = pca_2d(&features, n, stds.len());
        let (v1, v2) = (variance(&points, 0), variance(&points, 1));
        assert!(v1 > v2 && v2 > 0.0, "{v1} {v2}");
        // About 16 and 4, the two largest variances put in.
        assert!((v1 / 16.0 - 1.0).abs() < 0.25, "{v1}");
        assert!((v2 / 4.0 - 1.0).abs() < 0.25, "{v2}");
    }

    #[test]
    fn the_directions_are_the_dominant_axes() {
        let stds = [0.5, 4.0, 1.0, 2.0];
        let n = 1000;
        let features = anisotropic(n, &stds, 11);
        let centred = centre_rows(&features, n, 4);
        let [first, second] = top_two_directions(&covariance(&centred, n, 4), 4);
        // Unit length, orthogonal, along axes 1 and 3, pointing positive.
        assert!((dot(&first, &first) - 1.0).abs() < 1e-9);
        assert!((dot(&second, &second) - 1.0).abs() < 1e-9);
        assert!(dot(&first, &second).abs() < 1e-9);
        assert!(first[1] > 0.99, "{first:?}");
        assert!(second[3] > 0.99, "{second:?}");
    }

    #[test]
    fn it_agrees_with_the_closed_form_in_two_dimensions() {
        // Correlated 2-D data; its covariance [[a, b], [b, c]] has largest
        // eigenvalue (a + c) / 2 + sqrt(((a - c) / 2)^2 + b^2), which must be
        // the variance of pc1 (and the smaller one that of pc2).
        let n = 300;
        let mut rng = rng::Rng::from_seed(3);
        let mut features = Vec::new();
        for _ in 0..n {
            let (u, v) = (rng.normal() as f64, rng.normal() as f64);
            features.push((2.0 * u + 0.5 * v) as f32);
            features.push((1.0 * u - 0.3 * v + 1.0) as f32);
        }
        let centred = centre_rows(&features, n, 2);
        let c = covariance(&centred, n, 2);
        let (a, b, cc) = (c[0], c[1], c[3]);
        let spread = (0.25 * (a - cc) * (a - cc) + b * b).sqrt();
        let points = pca_2d(&features, n, 2);
        let v1 = variance(&points, 0);
        let v2 = variance(&points, 1);
        assert!((v1 - (0.5 * (a + cc) + spread)).abs() < 1e-4 * v1, "{v1}");
        assert!((v2 - (0.5 * (a + cc) - spread)).abs() < 1e-3 * v1, "{v2}");
    }

    #[test]
    fn it_is_deterministic_and_the_sign_follows_the_data() {
        let n = 50;
        let features = anisotropic(n, &[3.0, 1.0, 2.0], 5);
        let a = pca_2d(&features, n, 3);
        let b = pca_2d(&features, n, 3);
        assert_eq!(a, b);
        // Negating the data negates the centred rows but not the directions
        // (their signs are fixed by the rule), so the projections flip.
        let negated: Vec<f32> = features.iter().map(|x| -x).collect();
        let c = pca_2d(&negated, n, 3);
        for (p, q) in a.iter().zip(&c) {
            assert!(
                (p[0] + q[0]).abs() < 1e-4 && (p[1] + q[1]).abs() < 1e-4,
                "{p:?} {q:?}"
            );
        }
    }

    #[test]
    fn degenerate_inputs_give_zeros_not_nan() {
        assert!(pca_2d(&[], 0, 5).is_empty());
        assert_eq!(pca_2d(&[1.0, 2.0, 3.0], 1, 3), vec![[0.0, 0.0]]);
        assert_eq!(pca_2d(&[], 3, 0), vec![[0.0, 0.0]; 3]);
        // Constant rows: no variance at all.
        let constant = [2.0f32, -1.0].repeat(6);
        assert_eq!(pca_2d(&constant, 6, 2), vec![[0.0, 0.0]; 6]);
        // One feature: pc1 is the centred value, pc2 is zero.
        let one = pca_2d(&[1.0, 2.0, 6.0], 3, 1);
        assert_eq!(one, vec![[-2.0, 0.0], [-1.0, 0.0], [3.0, 0.0]]);
        // Non-finite values count as 0.
        let odd = pca_2d(&[f32::NAN, 1.0, 2.0, f32::INFINITY, 0.0, 3.0], 3, 2);
        assert!(
            odd.iter().all(|p| p[0].is_finite() && p[1].is_finite()),
            "{odd:?}"
        );
    }

    #[test]
    fn equal_variances_do_not_break_it() {
        // An isotropic cloud: every plane is as good as any other.
        let n = 200;
        let features = anisotropic(n, &[1.0; 8], 9);
        let points = pca_2d(&features, n, 8);
        assert!(points.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        assert!(variance(&points, 0) >= variance(&points, 1));
    }

    #[test]
    #[should_panic(expected = "n * d")]
    fn a_wrong_length_panics() {
        pca_2d(&[1.0, 2.0, 3.0], 2, 2);
    }
}
