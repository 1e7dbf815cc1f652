//! CPU kernel of `select`: ndarray broadcasts the three operands to the
//! output shape, and one zip picks each element.

use crate::backend::cpu::go_parallel;
use crate::Tensor;
use ndarray::{ArrayViewMutD, IxDyn, Zip};

/// The elements of `cond ? a : b` broadcast to `shape`.
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Vec<f32> {
    let n = crate::shape::numel(shape);
    let mut out = vec![0.0f32; n];
    let (cv, av, bv) = (
        cond.cpu_view("select"),
        a.cpu_view("select"),
        b.cpu_view("select"),
    );
    let cv = cv
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let av = av
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let bv = bv
        .broadcast(IxDyn(shape))
        .expect("shape checked by broadcast_shape");
    let mut ov = ArrayViewMutD::from_shape(IxDyn(shape), &mut out).expect("sized above");
    let zip = Zip::from(&mut ov).and(&cv).and(&av).and(&bv);
    let pick = |o: &mut f32, &c: &f32, &x: &f32, &y: &f32| *o = if c != 0.0 { x } else { y };
    if go_parallel(n) {
        zip.par_for_each(pick);
    } else {
        zip.for_each(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    #[test]
    fn picks_by_mask_with_broadcasting() {
        let d = Device::Cpu;
        let x = Tensor::randn(&[7, 33], 0.0, 1.0, 3, &d);
        let mask = x.gt_scalar(0.0);
        let zero = Tensor::scalar(0.0, &d);
        // select(x > 0, x, 0) is relu.
        assert_eq!(mask.select(&x, &zero).to_vec(), x.relu().to_vec());
        // A row mask broadcast over columns.
        let rows = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3, 1], &d);
        let a = Tensor::full(&[3, 7], 5.0, &d);
        let b = Tensor::from_vec((0..7).map(|i| i as f32).collect(), &[7], &d);
        let got = rows.select(&a, &b).to_vec();
        for r in 0..3 {
            for c in 0..7 {
                let want = if r != 1 { 5.0 } else { c as f32 };
                assert_eq!(got[r * 7 + c], want);
            }
        }
    }
}
