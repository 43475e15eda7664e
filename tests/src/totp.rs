//! One-time passwords computed by the tests themselves (RFC 6238: HMAC-SHA1, 30-second steps,
//! six digits), independently of the host's implementation, from the secret its page shows.

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The bytes of a base32 secret (RFC 4648, upper case, no padding).
pub fn base32_decode(text: &str) -> Result<Vec<u8>> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.trim().chars() {
        let v = ALPHABET.find(c).with_context(|| format!("{c} is not base32"))? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

/// The six-digit code of a secret for a 30-second step.
pub fn code(secret: &[u8], step: u64) -> Result<String> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)?;
    mac.update(&step.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = usize::from(d[19] & 0x0f);
    let n = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]) % 1_000_000;
    Ok(format!("{n:06}"))
}

/// The current 30-second step.
pub fn now_step() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 30).unwrap_or(0)
}
