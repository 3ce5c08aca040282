//! Is there a usable GPU? Asked before the first cudarc call.
//!
//! cudarc (built with `dynamic-loading`) opens libcuda and libnvrtc on its first call and
//! *panics* when it cannot find them. A program that should say "no GPU here, using the
//! CPU" must therefore look first, with the same loader, for the same files: `libloading`
//! opens the library names below (each one is on cudarc's own candidate list, so whatever
//! the probe finds cudarc finds too), then asks the driver directly, through three C entry
//! points, whether it starts, whether it is new enough, and how many devices it sees.
//! Every failure is one line saying what is missing and what to do.

use libloading::{Library, Symbol};
use std::sync::OnceLock;

/// The CUDA major version of the Cargo feature `cuda-13000`: cudarc then looks for
/// `libnvrtc.so.13` and expects a driver for CUDA 13 (driver 580 or newer).
pub const CUDA_MAJOR: i32 = 13;

/// The driver's file names, most specific first: the versioned name is what the driver
/// package installs; the bare name exists where the development files are installed.
const DRIVER_NAMES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// NVRTC's file names for CUDA 13: the toolkit and pip's `nvidia-cuda-nvrtc` (under
/// `site-packages/nvidia/cu13/lib`) both ship `libnvrtc.so.13`.
const NVRTC_NAMES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so"];

/// The driver's status code for success (`CUDA_SUCCESS`).
const CUDA_SUCCESS: i32 = 0;

/// The driver library, opened once and kept open: it is initialised (`cuInit`) by the
/// probe, and unloading an initialised driver from under a process that will use it (through
/// cudarc, which opens the same file again) is asking for trouble.
static DRIVER: OnceLock<Result<Library, String>> = OnceLock::new();

/// Ok when the driver and NVRTC load and the driver sees at least one device; else one line
/// saying what is missing. Safe to call any number of times, from any thread.
pub fn probe() -> Result<(), String> {
    let driver = DRIVER.get_or_init(|| {
        open_first(DRIVER_NAMES).ok_or_else(|| "no NVIDIA driver (libcuda.so.1 not found)".to_string())
    });
    let driver = driver.as_ref().map_err(Clone::clone)?;
    let mut version = 0; // 1000 * major + 10 * minor: 13000 is CUDA 13.0
                         // SAFETY: the three functions are declared with the C signatures of the CUDA driver
                         // API (`CUresult` is a C enum, an i32; `CUdevice` counts are ints), and are called with
                         // valid pointers to locals.
    unsafe {
        let cu_init: Symbol<unsafe extern "C" fn(u32) -> i32> = symbol(driver, b"cuInit\0")?;
        let rc = cu_init(0);
        if rc != CUDA_SUCCESS {
            return Err(format!(
                "the NVIDIA driver is installed but does not start (cuInit error {rc}{})",
                cu_error_hint(rc)
            ));
        }
        let version_fn: Symbol<unsafe extern "C" fn(*mut i32) -> i32> = symbol(driver, b"cuDriverGetVersion\0")?;
        if version_fn(&mut version) != CUDA_SUCCESS || version / 1000 < CUDA_MAJOR {
            return Err(format!(
                "the NVIDIA driver supports CUDA {}.{}, this build needs CUDA {CUDA_MAJOR} (driver 580 or newer)",
                version / 1000,
                version % 1000 / 10
            ));
        }
        let count_fn: Symbol<unsafe extern "C" fn(*mut i32) -> i32> = symbol(driver, b"cuDeviceGetCount\0")?;
        let mut count = 0;
        if count_fn(&mut count) != CUDA_SUCCESS || count < 1 {
            return Err("no CUDA device (the NVIDIA driver reports none)".into());
        }
    }
    // NVRTC writes PTX of its own version, and a driver loads PTX no newer than itself.
    let driver_version = (version / 1000, version % 1000 / 10);
    let nvrtc_version = probe_nvrtc()?;
    if nvrtc_version > driver_version {
        return Err(format!(
            "NVRTC {}.{} writes PTX that this driver (CUDA {}.{}) cannot load; use NVRTC {}.{} or older",
            nvrtc_version.0, nvrtc_version.1, driver_version.0, driver_version.1, driver_version.0, driver_version.1
        ));
    }
    Ok(())
}

/// Ok((major, minor)), NVRTC's version, when it loads; it needs no GPU. Else one line.
pub fn probe_nvrtc() -> Result<(i32, i32), String> {
    let lib = open_first(NVRTC_NAMES).ok_or_else(|| {
        "NVRTC not found (libnvrtc.so.13); install the CUDA 13 toolkit or pip's nvidia-cuda-nvrtc \
         and put its lib folder (site-packages/nvidia/cu13/lib) on LD_LIBRARY_PATH"
            .to_string()
    })?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: `nvrtcVersion(int* major, int* minor)` returns an `nvrtcResult`, a C enum.
    let rc = unsafe {
        let version: Symbol<unsafe extern "C" fn(*mut i32, *mut i32) -> i32> = symbol(&lib, b"nvrtcVersion\0")?;
        version(&mut major, &mut minor)
    };
    if rc != 0 || major != CUDA_MAJOR {
        return Err(format!(
            "NVRTC {major}.{minor} found, this build needs NVRTC {CUDA_MAJOR}.x (libnvrtc.so.{CUDA_MAJOR})"
        ));
    }
    Ok((major, minor))
}

/// The first of `names` that the dynamic loader can open (it searches LD_LIBRARY_PATH, the
/// ld.so cache and the system folders, as it will for cudarc).
fn open_first(names: &[&str]) -> Option<Library> {
    // SAFETY: opening a library runs its initialisers; these are NVIDIA's own libraries,
    // which cudarc would open in the same way.
    names.iter().find_map(|name| unsafe { Library::new(*name) }.ok())
}

/// # Safety
/// `T` must be the symbol's true C signature.
unsafe fn symbol<'l, T>(lib: &'l Library, name: &[u8]) -> Result<Symbol<'l, T>, String> {
    lib.get(name)
        .map_err(|e| format!("the CUDA library lacks {}: {e}", String::from_utf8_lossy(&name[..name.len() - 1])))
}

/// A few words for the cuInit failures people meet.
fn cu_error_hint(rc: i32) -> &'static str {
    match rc {
        100 => ": no CUDA-capable device",              // CUDA_ERROR_NO_DEVICE
        35 => ": the driver is older than the runtime", // CUDA_ERROR_INSUFFICIENT_DRIVER
        999 => ": unknown error; is the device visible in this container?",
        _ => "",
    }
}
