//! Every op against PyTorch's own outputs and gradients.
//!
//! The case file (`../shared/reference/torch_ops.json`, committed as
//! `tests/data/torch_ops.json`) holds, per case, an op, its attributes, its inputs, PyTorch's
//! output (and pool indices), an upstream gradient r, and the gradients of sum(output * r)
//! for each input, all computed in float64. Set `TORCH_REFERENCE=path` to check another file
//! in the same format. Our ops run in f32, so values agree to 1e-5 relative plus 1e-5
//! absolute. A case whose op or attribute we do not know is a failure, never a skip.

use autoencoders::ops::pool::Indices;
use autoencoders::optim::{Adam, AdamConfig};
use autoencoders::{Tape, Tensor, Var};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;
use std::collections::BTreeMap;

const REL: f64 = 1e-5;
const ABS: f64 = 1e-5;

fn tensor(v: &Value) -> Result<Tensor, String> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .ok_or("tensor without a shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
        .collect::<Result<_, _>>()?;
    let data: Vec<f32> = v["data"]
        .as_array()
        .ok_or("tensor without data")?
        .iter()
        .map(|d| d.as_f64().map(|d| d as f32).ok_or("non-numeric value"))
        .collect::<Result<_, _>>()?;
    if shape.iter().product::<usize>() != data.len() {
        return Err(format!("shape {shape:?} does not hold {} values", data.len()));
    }
    Ok(Tensor::from_vec(&shape, data))
}

fn compare(what: &str, got: &[f32], got_shape: &[usize], want: &Value) -> Result<(), String> {
    let want = tensor(want)?;
    if got_shape != want.shape() {
        return Err(format!("{what}: shape {got_shape:?}, PyTorch {:?}", want.shape()));
    }
    for (i, (&g, &w)) in got.iter().zip(want.as_slice()).enumerate() {
        let (g, w) = (g as f64, w as f64);
        if (g - w).abs() > REL * w.abs() + ABS || !g.is_finite() {
            return Err(format!("{what}[{i}] = {g}, PyTorch {w}"));
        }
    }
    Ok(())
}

fn attr_usize(attrs: &Value, key: &str, default: Option<usize>) -> Result<usize, String> {
    match attrs.get(key) {
        Some(v) => v.as_u64().map(|v| v as usize).ok_or(format!("attribute {key} is not a count")),
        None => default.ok_or(format!("attribute {key} missing")),
    }
}

/// Fails on attributes we would otherwise silently ignore.
fn only_attrs(attrs: &Value, known: &[&str]) -> Result<(), String> {
    match attrs.as_object() {
        Some(map) => match map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown attribute {k}")),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

fn check_case(case: &Value) -> Result<(), String> {
    let op = case["op"].as_str().ok_or("case without an op")?;
    let attrs = &case["attrs"];
    if op == "adam" {
        return check_adam(case);
    }
    let inputs: BTreeMap<String, Tensor> = case["inputs"]
        .as_object()
        .ok_or("case without inputs")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), tensor(v)?)))
        .collect::<Result<_, String>>()?;
    let mut tape = Tape::new();
    let vars: BTreeMap<&str, Var> = inputs.iter().map(|(k, t)| (k.as_str(), tape.param(t.clone()))).collect();
    let get = |name: &str| vars.get(name).copied().ok_or(format!("{op}: input {name} missing"));
    let input_count = |known: &[&str]| match vars.keys().find(|k| !known.contains(k)) {
        Some(k) => Err(format!("{op}: unknown input {k}")),
        None => Ok(()),
    };

    let out = match op {
        "linear" => {
            only_attrs(attrs, &[])?;
            input_count(&["x", "weight", "bias"])?;
            tape.linear(get("x")?, get("weight")?, vars.get("bias").copied())
        }
        "relu" => {
            only_attrs(attrs, &[])?;
            input_count(&["x"])?;
            tape.relu(get("x")?)
        }
        "conv2d" | "conv_transpose2d" => {
            only_attrs(attrs, &["stride", "padding"])?;
            input_count(&["x", "weight", "bias"])?;
            let (stride, padding) = (attr_usize(attrs, "stride", Some(1))?, attr_usize(attrs, "padding", Some(0))?);
            let (x, w, b) = (get("x")?, get("weight")?, vars.get("bias").copied());
            if op == "conv2d" {
                tape.conv2d(x, w, b, stride, padding)
            } else {
                tape.conv_transpose2d(x, w, b, stride, padding)
            }
        }
        "max_pool2d" => {
            only_attrs(attrs, &["kernel", "stride"])?;
            input_count(&["x"])?;
            if attr_usize(attrs, "kernel", Some(2))? != 2 || attr_usize(attrs, "stride", Some(2))? != 2 {
                return Err("max_pool2d: only kernel 2, stride 2 is implemented".into());
            }
            let (y, indices) = tape.max_pool2d(get("x")?);
            let got: Vec<f32> = indices.to_vec().iter().map(|&i| i as f32).collect();
            compare("indices", &got, &indices.shape, case.get("indices").ok_or("max_pool2d case without indices")?)?;
            y
        }
        "max_unpool2d" => {
            only_attrs(attrs, &["kernel", "stride", "output_size"])?;
            input_count(&["x"])?;
            if attr_usize(attrs, "kernel", Some(2))? != 2 || attr_usize(attrs, "stride", Some(2))? != 2 {
                return Err("max_unpool2d: only kernel 2, stride 2 is implemented".into());
            }
            let size = attrs["output_size"].as_array().ok_or("max_unpool2d without output_size")?;
            let [h, w] = &size[..] else { return Err("output_size must be [h, w]".into()) };
            let (h, w) = (h.as_u64().ok_or("bad output_size")? as usize, w.as_u64().ok_or("bad output_size")? as usize);
            let idx = tensor(case.get("indices").ok_or("max_unpool2d case without indices")?)?;
            let shape: [usize; 4] = idx.shape().try_into().map_err(|_| "indices must be 4-d")?;
            let indices = Indices::from_vec(shape, idx.as_slice().iter().map(|&i| i as u32).collect());
            tape.max_unpool2d(get("x")?, &indices, h, w)
        }
        "mse" => {
            only_attrs(attrs, &["reduction"])?;
            input_count(&["x", "target"])?;
            if attrs.get("reduction").and_then(Value::as_str).unwrap_or("mean") != "mean" {
                return Err("mse: only reduction 'mean' is implemented".into());
            }
            tape.mse(get("x")?, get("target")?)
        }
        "l1_mean_abs" => {
            only_attrs(attrs, &[])?;
            input_count(&["x"])?;
            tape.mean_abs(get("x")?)
        }
        other => return Err(format!("unknown op {other}")),
    };
    compare("output", tape.value(out).as_slice(), tape.shape(out), &case["output"])?;

    let upstream = tensor(&case["upstream_grad"])?;
    if upstream.shape() != tape.shape(out) {
        return Err("upstream_grad has the wrong shape".into());
    }
    tape.backward_with(out, ArrayD::from_shape_vec(IxDyn(upstream.shape()), upstream.to_vec()).unwrap());
    let grads = case["grads"].as_object().ok_or("case without grads")?;
    if grads.is_empty() {
        return Err("case without grads".into());
    }
    for (name, want) in grads {
        let v = get(name)?;
        let got = tape.take_grad(v);
        compare(&format!("grad {name}"), got.as_slice(), got.shape(), want)?;
    }
    Ok(())
}

fn check_adam(case: &Value) -> Result<(), String> {
    let attrs = &case["attrs"];
    only_attrs(attrs, &["lr", "betas", "eps"])?;
    let defaults = AdamConfig::default();
    let f = |key: &str, d: f32| {
        attrs.get(key).map_or(Ok(d), |v| v.as_f64().map(|v| v as f32).ok_or(format!("attribute {key} is not a number")))
    };
    let betas = attrs.get("betas").and_then(Value::as_array);
    let beta = |i: usize, d: f32| {
        betas.map_or(Some(d), |b| b.get(i).and_then(Value::as_f64).map(|v| v as f32)).ok_or("betas must be two numbers")
    };
    let config = AdamConfig {
        lr: f("lr", defaults.lr)?,
        beta1: beta(0, defaults.beta1)?,
        beta2: beta(1, defaults.beta2)?,
        eps: f("eps", defaults.eps)?,
    };
    let mut param = tensor(&case["inputs"]["param"])?;
    let grads = case["grad_sequence"].as_array().ok_or("adam case without grad_sequence")?;
    let want = case["param_after_each_step"].as_array().ok_or("adam case without param_after_each_step")?;
    if grads.len() != want.len() || grads.is_empty() {
        return Err("grad_sequence and param_after_each_step differ in length".into());
    }
    let mut adam = Adam::new(config, [param.len()]);
    for (step, (g, w)) in grads.iter().zip(want).enumerate() {
        let g = tensor(g)?;
        adam.step(&mut [&mut param], &[g]);
        compare(&format!("param after step {}", step + 1), param.as_slice(), param.shape(), w)?;
    }
    Ok(())
}

#[test]
fn every_case_matches_pytorch() {
    let path = std::env::var("TORCH_REFERENCE")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/torch_ops.json").to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read the reference cases {path}: {e}"));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    let cases = file["cases"].as_array().unwrap_or_else(|| panic!("{path} has no \"cases\" list"));
    assert!(!cases.is_empty(), "{path} holds no cases");
    let mut failures = Vec::new();
    let mut per_op: BTreeMap<String, usize> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let op = case["op"].as_str().unwrap_or("?").to_string();
        match check_case(case) {
            Ok(()) => *per_op.entry(op).or_default() += 1,
            Err(e) => failures.push(format!("case {i} ({op}): {e}")),
        }
    }
    println!("{path}: passed {per_op:?}");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
