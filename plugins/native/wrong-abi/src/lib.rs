//! Test fixture: reports native ABI version 2.

/// The wrong version.
#[unsafe(no_mangle)]
pub extern "C" fn greenlight_abi_version() -> u32 {
    2
}
