//! The tape's own rules, seen from outside: what `backward_each` hands out, and when; what a
//! `no_grad` tape keeps; which floor's kernels a tape computes with.

mod common;

use autoencoders::ops::Kernels;
use autoencoders::{Tape, Tensor};
use common::{normal, panic_message, rng};

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

/// A `no_grad` tape (evaluation) computes the same values as a recording one, says it does
/// not record, keeps no gradient, and refuses `backward`; a recording tape keeps gradients
/// only for what depends on a parameter: a value computed from inputs alone gets none.
#[test]
fn only_a_recording_tape_keeps_gradients_and_only_where_a_parameter_leads() {
    let record = |tape: &mut Tape| {
        let x = tape.input(Tensor::from_vec(&[4], vec![0.5, -1.0, 2.0, -0.25]));
        let w = tape.param(Tensor::from_vec(&[4], vec![1.0, 2.0, -3.0, 0.5]));
        let doubled = tape.scale(x, 2.0); // inputs alone
        let sum = tape.add(doubled, w); // a parameter leads here
        let loss = tape.mean_abs(sum);
        (doubled, sum, w, loss)
    };
    let mut tape = Tape::new();
    assert!(tape.is_recording());
    let (doubled, sum, w, loss) = record(&mut tape);
    tape.backward(loss);
    assert!(tape.grad(doubled).is_none(), "a value computed from inputs alone got a gradient");
    assert!(tape.grad(sum).is_some() && tape.grad(w).is_some(), "the parameter's path has gradients");
    let value = tape.value(loss).to_vec();

    let mut eval = Tape::no_grad();
    assert!(!eval.is_recording());
    let (_, _, w, loss) = record(&mut eval);
    assert_eq!(eval.value(loss).to_vec(), value, "no_grad computes the same values");
    assert!(eval.grad(w).is_none());
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| eval.backward(loss)));
    let message = refused.expect_err("backward on a no_grad tape must be refused");
    let message = panic_message(&*message);
    assert!(message.is_some_and(|m| m.contains("no_grad")), "refused for another reason: {message:?}");
}

/// A tape given the reference kernels computes its CPU ops with the plain loops of `ops/`,
/// and by default with the fast ones of `cpu/`, backward rules included: each tape's linear
/// layer has the bits of its own floor's functions, forward and weight gradient, and its
/// transposed convolution the weight gradient of its floor. (On these inputs the two floors'
/// sums differ in their last bits, as checked first, so the test can tell which ran.)
#[test]
fn a_tape_computes_with_the_kernels_it_was_given() {
    use autoencoders::{cpu, ops};
    let (n, d_in, d_out) = (64, 300, 40);
    let mut rng = rng(7);
    let mut values = |len: usize| normal(&[len], &mut rng).to_vec();
    let (x, w, dout) = (values(n * d_in), values(d_out * d_in), values(n * d_out));
    type Forward = fn(&[f32], &[f32], Option<&[f32]>, &mut [f32], usize, usize);
    type Backward = fn(&[f32], &[f32], &mut [f32], usize, usize);
    let floor = |forward: Forward, backward_weight: Backward| {
        let (mut y, mut dw) = (vec![0.0; n * d_out], vec![0.0; d_out * d_in]);
        forward(&x, &w, None, &mut y, d_in, d_out);
        backward_weight(&dout, &x, &mut dw, d_in, d_out);
        (y, dw)
    };
    let reference = floor(ops::linear::linear_forward, ops::linear::linear_backward_weight);
    let fast = floor(cpu::linear::linear_forward, cpu::linear::linear_backward_weight);
    assert!(reference.0 != fast.0 && reference.1 != fast.1, "the floors agree to the bit here: pick another input");
    for (kernels, (y_want, dw_want)) in [(Kernels::Reference, &reference), (Kernels::Fast, &fast)] {
        let mut tape = Tape::new().with_kernels(kernels);
        assert_eq!(tape.kernels(), kernels);
        let xv = tape.input(Tensor::from_vec(&[n, d_in], x.clone()));
        let wv = tape.param(Tensor::from_vec(&[d_out, d_in], w.clone()));
        let y = tape.linear(xv, wv, None);
        assert!(tape.value(y).to_vec() == *y_want, "{kernels:?}: y is not that floor's linear_forward");
        tape.backward_with(y, Tensor::from_vec(&[n, d_out], dout.clone()));
        assert!(tape.take_grad(wv).to_vec() == *dw_want, "{kernels:?}: dW is not that floor's");
    }

    // The same for a transposed convolution's weight gradient (cae-deconv's 8 -> 16 at
    // stride 2): x (4, 8, 7, 7), W (8, 16, 2, 2), y (4, 16, 14, 14).
    let geom = autoencoders::geom::ConvGeom::new(16, 14, 14, 2, 2, 2, 0);
    let (x, w, dout) = (values(4 * 8 * 49), values(8 * 16 * 4), values(4 * 16 * 196));
    let floor = |backward_weight: fn(&[f32], &[f32], &mut [f32], &autoencoders::geom::ConvGeom, usize)| {
        let mut dw = vec![0.0; w.len()];
        backward_weight(&dout, &x, &mut dw, &geom, 8);
        dw
    };
    let reference = floor(ops::conv::conv_transpose2d_backward_weight);
    let fast = floor(cpu::conv::conv_transpose2d_backward_weight);
    assert!(reference != fast, "the floors' dW agree to the bit here: pick another input");
    for (kernels, want) in [(Kernels::Reference, &reference), (Kernels::Fast, &fast)] {
        let mut tape = Tape::new().with_kernels(kernels);
        let xv = tape.input(Tensor::from_vec(&[4, 8, 7, 7], x.clone()));
        let wv = tape.param(Tensor::from_vec(&[8, 16, 2, 2], w.clone()));
        let y = tape.conv_transpose2d(xv, wv, None, 2, 0);
        tape.backward_with(y, Tensor::from_vec(&[4, 16, 14, 14], dout.clone()));
        assert!(tape.take_grad(wv).to_vec() == *want, "{kernels:?}: conv_transpose2d's dW is not that floor's");
    }
}

/// A value fed to two ReLUs gets the sum of both gradients on either floor. The fast floor
/// makes the first gradient to reach a ReLU's input whole (`grad_new_or_add`, no zeros
/// first) and adds the second: here 2 dout where x > 0 and 0 elsewhere, exactly (a sum of
/// two equal values), and the same from the plain loops.
#[test]
fn a_value_used_by_two_relus_gets_both_gradients() {
    let mut rng = rng(11);
    let (x, dout) = (normal(&[5000], &mut rng).to_vec(), normal(&[5000], &mut rng).to_vec());
    let want: Vec<f32> = x.iter().zip(&dout).map(|(&x, &d)| if x > 0.0 { 2.0 * d } else { 0.0 }).collect();
    for kernels in [Kernels::Reference, Kernels::Fast] {
        let mut tape = Tape::new().with_kernels(kernels);
        let xv = tape.param(Tensor::from_vec(&[5000], x.clone()));
        let (a, b) = (tape.relu(xv), tape.relu(xv));
        let sum = tape.add(a, b);
        tape.backward_with(sum, Tensor::from_vec(&[5000], dout.clone()));
        assert!(tape.take_grad(xv).to_vec() == want, "{kernels:?}: dx is not 2 dout where x > 0");
    }
}

/// A linear layer applied twice to the same input with the same weight: x and W each get
/// two equal gradients, so each must come out exactly twice what one use gives, on either
/// floor. The fast floor writes the first gradient of x and of W into a new buffer
/// (`grad_new_or_add`: no zeros first) and adds the second onto it; a third of the output
/// units get no gradient, so its products take their leaving-out paths too.
#[test]
fn a_linear_layer_used_twice_gets_both_gradients() {
    let (n, d_in, d_out) = (8, 40, 30);
    let mut r = rng(12);
    let (x, w) = (normal(&[n, d_in], &mut r).to_vec(), normal(&[d_out, d_in], &mut r).to_vec());
    let mut dout = normal(&[n, d_out], &mut r).to_vec();
    dout.iter_mut().enumerate().filter(|(i, _)| i % d_out % 3 == 0).for_each(|(_, g)| *g = 0.0);
    for kernels in [Kernels::Reference, Kernels::Fast] {
        let grads = |twice: bool| {
            let mut tape = Tape::new().with_kernels(kernels);
            let xv = tape.param(Tensor::from_vec(&[n, d_in], x.clone()));
            let wv = tape.param(Tensor::from_vec(&[d_out, d_in], w.clone()));
            let mut y = tape.linear(xv, wv, None);
            if twice {
                let again = tape.linear(xv, wv, None);
                y = tape.add(y, again);
            }
            tape.backward_with(y, Tensor::from_vec(&[n, d_out], dout.clone()));
            (tape.take_grad(xv).to_vec(), tape.take_grad(wv).to_vec())
        };
        let ((dx1, dw1), (dx2, dw2)) = (grads(false), grads(true));
        let doubled = |g: &[f32]| g.iter().map(|g| 2.0 * g).collect::<Vec<f32>>();
        assert!(dx2 == doubled(&dx1), "{kernels:?}: dx of two uses is not twice one use's");
        assert!(dw2 == doubled(&dw1), "{kernels:?}: dW of two uses is not twice one use's");
        assert!(dx1.iter().any(|&g| g != 0.0) && dw1.iter().any(|&g| g != 0.0), "gradients of zeros prove nothing");
    }
}
