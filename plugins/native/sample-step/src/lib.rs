//! Sample native approval step, Greenlight native ABI version 1: JSON in, JSON out (the same
//! shapes Rhai scripts see). Orders from a watched department get a `compliance` stage and a flag.

use serde_json::{Value, json};

/// The ABI version this library implements.
#[unsafe(no_mangle)]
pub extern "C" fn greenlight_abi_version() -> u32 {
    1
}

fn evaluate(ctx: &Value) -> Result<Value, String> {
    let department = ctx["order"]["department"].as_str().unwrap_or_default();
    let watched = ctx["config"]["departments"].as_array().cloned().unwrap_or_default();
    if department.is_empty() || !watched.iter().any(|d| d.as_str() == Some(department)) {
        return Ok(json!({}));
    }
    Ok(json!({
        "stages": [{
            "key": "compliance-watch",
            "title": "Compliance review (watched department)",
            "level": 5,
            "approvers": {"role": "compliance"},
            "reason": format!("orders from {department} are reviewed by compliance")
        }],
        "flags": [{"code": "watched-department", "severity": "warning", "message": format!("department {department} is on the watch list")}]
    }))
}

fn hand_out(bytes: Vec<u8>, out: *mut *mut u8, out_len: *mut usize) {
    let mut boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    let ptr = boxed.as_mut_ptr();
    std::mem::forget(boxed);
    // SAFETY: the host passes valid pointers for the result, per ABI version 1.
    unsafe {
        *out = ptr;
        *out_len = len;
    }
}

/// Evaluates one order: 0 and a StepOutput as JSON, or non-zero and an error message.
///
/// # Safety
/// `ctx` must point to `ctx_len` readable bytes; `out` and `out_len` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn greenlight_evaluate(ctx: *const u8, ctx_len: usize, out: *mut *mut u8, out_len: *mut usize) -> i32 {
    // SAFETY: the caller guarantees `ctx` points to `ctx_len` bytes.
    let input = unsafe { std::slice::from_raw_parts(ctx, ctx_len) };
    let result = serde_json::from_slice::<Value>(input).map_err(|e| e.to_string()).and_then(|v| evaluate(&v));
    match result {
        Ok(v) => {
            hand_out(v.to_string().into_bytes(), out, out_len);
            0
        }
        Err(e) => {
            hand_out(e.into_bytes(), out, out_len);
            1
        }
    }
}

/// Frees a buffer this library returned.
///
/// # Safety
/// `ptr` and `len` must come from `greenlight_evaluate` of this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn greenlight_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        // SAFETY: rebuilds the boxed slice handed out by `hand_out`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}
