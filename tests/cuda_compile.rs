//! Every kernels/*.cu compiles with NVRTC: a kernel that does not compile is caught on a
//! machine with no GPU at all. NVRTC is a library (pip's `nvidia-cuda-nvrtc`), no driver
//! needed. Without it these tests print why and pass, unless REQUIRE_NVRTC=1 (as `.ci/run`
//! sets after installing it), when they fail instead.

mod common;

use autoencoders::cuda::{compile_kernels, compile_source, probe, probe_nvrtc, Gpu, SOURCES};

/// True when NVRTC is there; otherwise the skip policy's line (or, if required, a panic).
fn nvrtc_or_skip() -> bool {
    common::nvrtc().is_some()
}

#[test]
fn every_kernel_file_compiles_and_defines_its_kernels() {
    if !nvrtc_or_skip() {
        return;
    }
    let ptx = compile_kernels().unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(ptx.len(), SOURCES.len());
    for ((file, ptx), source) in ptx.iter().zip(SOURCES) {
        assert_eq!(*file, source.file);
        let text = ptx.to_src();
        for name in source.kernels {
            // `extern "C"` keeps the C name in the PTX; without it the name is mangled and
            // loading the function by its name would fail on the GPU.
            assert!(text.contains(&format!(".entry {name}(")), "{file}: no kernel named {name} in the PTX");
        }
    }
}

/// The crate's root: CARGO_MANIFEST_DIR at run time (cargo sets it; scripts/gpu-check.sh
/// sets it for the carried binaries, on a machine where the build path does not exist),
/// else where the test was built.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(Into::into).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

#[test]
fn every_kernel_file_is_listed() {
    // A new .cu that is not in `kernels!` would never be compiled or loaded.
    let dir = crate_dir().join("kernels");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".cu"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SOURCES.iter().map(|s| s.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn a_broken_kernel_fails_with_nvrtcs_log() {
    if !nvrtc_or_skip() {
        return;
    }
    let broken =
        "extern \"C\" __global__ void relu_forward(const float* x, float* y, unsigned int n) {\n    y[i] = x[i];\n}\n";
    let err = compile_source("broken.cu", broken).expect_err("an undeclared variable must not compile");
    assert!(err.starts_with("broken.cu does not compile"), "{err}");
    assert!(err.contains("identifier \"i\" is undefined"), "the log should name the error: {err}");
}

#[test]
fn a_mismatched_param_struct_fails_to_compile() {
    // The static_asserts in the .cu files pin each parameter struct's size to its Rust
    // mirror's; a field added on one side only is caught here, without a GPU.
    if !nvrtc_or_skip() {
        return;
    }
    let gemm = SOURCES.iter().find(|s| s.file == "gemm.cu").unwrap();
    let drifted = gemm.source.replace("    float beta;", "    float beta;\n    float alpha;");
    assert_ne!(drifted, gemm.source, "the fixture must change the struct");
    let err = compile_source("gemm.cu", &drifted).expect_err("a struct of the wrong size must not compile");
    assert!(err.contains("GemmParams must match its Rust mirror"), "{err}");
}

#[test]
fn the_probe_answers_in_one_line() {
    // Runs everywhere: on a machine without a GPU the reason is one line (what the command
    // line prints), and setting up a GPU fails with one line too, not a panic inside cudarc.
    // Where the probe succeeds, NVRTC is there (the probe asks for it) and the GPU starts.
    match probe() {
        Err(reason) => {
            assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
            let Err(err) = Gpu::new() else { panic!("Gpu::new succeeded where the probe found no GPU") };
            assert!(!err.is_empty() && !err.contains('\n'), "{err:?}");
            eprintln!("probe: {reason}");
        }
        Ok(()) => {
            probe_nvrtc().expect("the probe succeeded without NVRTC");
            Gpu::new().expect("the probe found a GPU that does not start");
        }
    }
    if let Err(reason) = probe_nvrtc() {
        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
    }
}

/// The parameter lists of the kernels in a .cu file: name -> ["const float* x", ...].
fn kernel_signatures(source: &str) -> Vec<(String, Vec<String>)> {
    source
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('(').unwrap();
            let params = rest.split_once(')').unwrap().0;
            (name.trim().to_string(), params.split(',').map(normalise).collect())
        })
        .collect()
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the Rust expression pushed, `args.arg(EXPR);`, is the C parameter `param`
/// ("const float* x") by name: one of EXPR's dotted parts, without `&`, `mut`, `*` and a
/// `32` suffix (the u32 copy of a count), is the parameter's name (`&images.pixels` for
/// `pixels`, `a.data` for `a`, `&n32` for `n`). A parameter struct (`GemmParams p`) is
/// checked by type instead: the .cu's static_asserts pin its size to the Rust mirror's.
fn argument_is(arg: &str, param: &str) -> bool {
    let expr = arg.trim().trim_start_matches("args.arg(").trim_end_matches(';').trim_end_matches(')');
    let expr = expr.trim_start_matches('&').trim_start_matches("mut ").trim_start_matches('*');
    let c_name = param.rsplit(' ').next().unwrap();
    let c_type = param.split(' ').find(|t| *t != "const").unwrap();
    let scalar_or_pointer = ["float", "double", "unsigned", "int"].iter().any(|t| c_type.starts_with(t));
    !scalar_or_pointer || expr.split('.').any(|part| part.trim_end_matches("32") == c_name)
}

#[test]
fn argument_names_are_matched() {
    assert!(argument_is("    args.arg(&images.pixels); ", "const unsigned char* pixels"));
    assert!(argument_is("args.arg(a.data);", "const float* a"));
    assert!(argument_is("args.arg(&n32);", "unsigned int n"));
    assert!(argument_is("args.arg(&mut partials);", "double* partials"));
    assert!(argument_is("args.arg(&p);", "ConvParams g"));
    // A swapped pair, a wrong count: caught.
    assert!(!argument_is("args.arg(y);", "const float* x"));
    assert!(!argument_is("args.arg(&c32);", "unsigned int n"));
}

#[test]
fn every_launch_pushes_the_kernels_parameters_in_order() {
    // Each launcher goes through `cuda::launch`, pushing its arguments one per line,
    // `args.arg(x); // const float* x`, the comment naming the C parameter. Read the
    // launchers' source and check that, for every kernel, the comments list its C parameters
    // in order: a launch that forgets, adds or swaps an argument is caught here, without a GPU.
    let signatures: Vec<(String, Vec<String>)> = SOURCES.iter().flat_map(|s| kernel_signatures(s.source)).collect();
    let dir = crate_dir().join("src/cuda");
    let mut launched = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for block in text.split("launch(gpu, &gpu.k.").skip(1) {
            let name = block.split_once(',').unwrap().0.to_string();
            let body = block.split("})").next().unwrap();
            let comments: Vec<String> = body
                .lines()
                .filter(|l| l.trim_start().starts_with("args.arg("))
                .map(|l| {
                    let (arg, comment) =
                        l.split_once("//").unwrap_or_else(|| panic!("{name}: an argument without its comment: {l}"));
                    let comment = normalise(comment);
                    assert!(argument_is(arg, &comment), "{name}: `{}` is pushed as `{comment}`", arg.trim());
                    comment
                })
                .collect();
            launched.insert(name, comments);
        }
    }
    for (name, params) in &signatures {
        let pushed = launched.get(name).unwrap_or_else(|| panic!("kernel {name} is never launched"));
        assert_eq!(pushed, params, "{name}: the launch's arguments differ from the kernel's parameters");
    }
    assert_eq!(launched.len(), signatures.len(), "a launch of a kernel that no .cu defines");
}
