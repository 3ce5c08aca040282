//! The tape's own rules, seen from outside: what `backward_each` hands out, and when.

use autoencoders::{Tape, Tensor};

/// `backward_each` hands out each parameter once, with the gradient `backward` gives it:
/// a leaf used twice only after its earlier use has been walked (the sum of both), a leaf
/// nothing used as zeros, and an input not at all.
#[test]
fn backward_each_hands_out_final_gradients_once() {
    let record = |tape: &mut Tape| {
        let a = tape.param(Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]));
        let x = tape.input(Tensor::from_vec(&[3], vec![0.25, 0.5, 4.0]));
        let unused = tape.param(Tensor::from_vec(&[2], vec![7.0, 8.0]));
        let b = tape.param(Tensor::from_vec(&[3], vec![3.0, 0.0, -1.0]));
        // loss = mse(2 a + b, x) + mean|a|: `a` is used by `scale` and, later, `mean_abs`.
        let twice = tape.scale(a, 2.0);
        let sum = tape.add(twice, b);
        let mse = tape.mse(sum, x);
        let abs = tape.mean_abs(a);
        let loss = tape.add(mse, abs);
        ([a, unused, b], loss)
    };
    let mut tape = Tape::new();
    let ([a, unused, b], loss) = record(&mut tape);
    tape.backward(loss);
    let want: Vec<Vec<f32>> = [a, unused, b].iter().map(|&v| tape.take_grad(v).to_vec()).collect();

    let mut tape = Tape::new();
    let ([a, unused, b], loss) = record(&mut tape);
    let mut got = Vec::new();
    tape.backward_each(loss, |v, grad| got.push((v, grad.to_vec())));
    // The walk reaches `b` (used by node 5, the add) before `a` (earliest use: node 4,
    // the scale); `unused` comes last.
    assert_eq!(got, vec![(b, want[2].clone()), (a, want[0].clone()), (unused, vec![0.0, 0.0])]);
    assert_eq!(tape.value(a).len(), 0, "the tape let go of a's value");
    assert_eq!(tape.value(loss).len(), 1, "the loss is still there");
}
