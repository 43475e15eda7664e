//! Native plugins: shared libraries from trusted vendors, loaded with libloading. Off unless the
//! operator turns them on (`--allow-native-plugins`), because native code is not sandboxed.
//!
//! The C ABI, version 1 (JSON in, JSON out, the same shapes Rhai scripts see):
//!
//! ```c
//! uint32_t greenlight_abi_version(void);              // must return 1
//! int32_t  greenlight_evaluate(const uint8_t *ctx, size_t ctx_len,
//!                              uint8_t **out, size_t *out_len);
//!          // 0: *out is a StepOutput as JSON; otherwise *out is an error message
//! void     greenlight_free(uint8_t *ptr, size_t len); // frees *out
//! ```

use crate::domain::step::{OrderContext, StepOutput};
use crate::engine::{Step, StepError, StepKind};
use std::path::Path;
use std::sync::Arc;

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

type AbiVersion = unsafe extern "C" fn() -> u32;
type Evaluate = unsafe extern "C" fn(*const u8, usize, *mut *mut u8, *mut usize) -> i32;
type Free = unsafe extern "C" fn(*mut u8, usize);

/// Why a native library was refused.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// Native plugins are off.
    #[error("native plugins are disabled on this host: the operator must start it with --allow-native-plugins")]
    Disabled,
    /// The library could not be loaded.
    #[error("cannot load the native library {path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The library speaks another ABI.
    #[error(
        "the native library {path} implements Greenlight native ABI {found}, but this host speaks ABI {ABI_VERSION}: rebuild it against ABI {ABI_VERSION}"
    )]
    Abi {
        /// The file.
        path: String,
        /// What it reported (or "none").
        found: String,
    },
}

/// A loaded native step.
pub struct NativeStep {
    name: String,
    code_hash: String,
    evaluate: Evaluate,
    free: Free,
    // Keeps the code mapped while the function pointers above are used.
    _library: Arc<libloading::Library>,
}

/// Loads a library and checks its ABI version.
#[allow(unsafe_code)]
pub fn load(path: &Path, name: &str, code_hash: &str) -> Result<NativeStep, NativeError> {
    let shown = path.display().to_string();
    let load_err = |e: libloading::Error| NativeError::Load { path: shown.clone(), reason: e.to_string() };
    // SAFETY: loading runs the library's initialisers. Native plugins are only loaded when the
    // operator enabled them for trusted vendors; that trust is the safety argument.
    let library = unsafe { libloading::Library::new(path) }.map_err(load_err)?;
    // SAFETY: the symbol's type is the ABI's `uint32_t (void)`.
    let version = unsafe { library.get::<AbiVersion>(b"greenlight_abi_version\0") }.map_err(|_| NativeError::Abi {
        path: shown.clone(),
        found: "none (no greenlight_abi_version symbol)".into(),
    })?;
    // SAFETY: calling a `uint32_t (void)` function with no arguments.
    let found = unsafe { version() };
    if found != ABI_VERSION {
        return Err(NativeError::Abi { path: shown, found: found.to_string() });
    }
    // SAFETY: the types match the ABI version 1 declarations above; the pointers are copied out
    // and stay valid because `_library` keeps the library loaded for the step's lifetime.
    let (evaluate, free) = unsafe {
        let e = *library.get::<Evaluate>(b"greenlight_evaluate\0").map_err(load_err)?;
        let f = *library.get::<Free>(b"greenlight_free\0").map_err(load_err)?;
        (e, f)
    };
    Ok(NativeStep {
        name: name.to_string(),
        code_hash: code_hash.to_string(),
        evaluate,
        free,
        _library: Arc::new(library),
    })
}

impl Step for NativeStep {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> StepKind {
        StepKind::Native
    }

    fn code_hash(&self) -> &str {
        &self.code_hash
    }

    #[allow(unsafe_code)]
    fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError> {
        let input = serde_json::to_vec(ctx).map_err(|e| StepError::Failed(e.to_string()))?;
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len: usize = 0;
        // SAFETY: input is a valid buffer for its length; out and out_len are valid places for
        // the library to write the result pointer and length, per ABI version 1.
        let rc = unsafe { (self.evaluate)(input.as_ptr(), input.len(), &mut out, &mut out_len) };
        let bytes = if out.is_null() {
            Vec::new()
        } else {
            // SAFETY: the library promises `out` points to `out_len` initialised bytes it
            // allocated; we copy them and hand the buffer back to its own allocator.
            let copy = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
            // SAFETY: freeing the buffer the library returned, with its own free function.
            unsafe { (self.free)(out, out_len) };
            copy
        };
        if rc != 0 {
            return Err(StepError::Failed(String::from_utf8_lossy(&bytes).into_owned()));
        }
        serde_json::from_slice(&bytes).map_err(|e| StepError::BadOutput(e.to_string()))
    }
}
