//! The second factor: time-based one-time passwords (TOTP, RFC 6238: HMAC-SHA1, 30-second
//! steps, six digits, the step before and after accepted for clock drift, each step usable
//! once), the `otpauth://` address an authenticator app reads from a QR code, and single-use
//! recovery codes, of which only hashes are kept.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Seconds per code.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps before and after the current one that are still accepted (clock drift).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA1.
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at enrollment.
pub const RECOVERY_CODES: usize = 10;

/// The code of one step (RFC 4226 HOTP with the step number as the counter).
pub fn code(secret: &[u8], step: i64) -> u32 {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks four bytes.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    word % 10u32.pow(DIGITS)
}

/// The step a Unix time falls in.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The step a typed code matches at `unix_seconds` (within the drift), if it is later than the
/// last step used: a code works once, and never one older than the last one used.
pub fn verify(secret: &[u8], typed: &str, unix_seconds: i64, last_used: Option<i64>) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = typed.parse().ok()?;
    let now = step_of(unix_seconds);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS)
        .filter(|s| last_used.is_none_or(|l| *s > l))
        .find(|s| constant_time_eq(code(secret, *s), wanted))
}

fn constant_time_eq(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The bytes of a base32 secret (case and spaces ignored); `None` if it is not base32.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = BASE32.iter().position(|b| char::from(*b) == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `otpauth://totp/` address of a secret, shown as a QR code at enrollment: the issuer
/// (`Greenlight (tenant)`) and the account (the user) label the entry in the app.
pub fn otpauth_uri(tenant: &str, user: &str, secret: &[u8]) -> String {
    let issuer = format!("Greenlight ({tenant})");
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent(&issuer),
        percent(user),
        base32(secret),
        percent(&issuer)
    )
}

/// A recovery code for people: twelve characters from 60 random bits in three groups
/// (`abcd-efgh-jkmn`), letters and digits that cannot be mistaken for one another.
pub fn recovery_code(random: [u8; 8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789_";
    let mut n = u64::from_be_bytes(random);
    let mut out = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 31 symbols (the last one of the alphabet is never drawn), five bits at a time.
        out.push(char::from(ALPHABET[((n & 31) % 31) as usize]));
        n >>= 5;
    }
    out
}

/// What is kept of a recovery code: the SHA-256 of its characters without dashes or spaces,
/// lower case, so a code typed differently still matches.
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret and times, with the last six digits of its
    /// eight-digit codes.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ] {
            assert_eq!(code(secret, step_of(time)), expected, "T = {time}");
        }
    }

    #[test]
    fn a_code_works_within_the_drift_and_only_once() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let typed = format!("{:06}", code(secret, step_of(now)));
        let step = verify(secret, &typed, now, None).expect("the current code");
        assert_eq!(verify(secret, &typed, now, Some(step)), None, "used once");
        let before = format!("{:06}", code(secret, step_of(now) - 1));
        assert!(verify(secret, &before, now, None).is_some(), "the step before is still accepted");
        assert_eq!(verify(secret, &before, now, Some(step)), None, "not after a later one was used");
        let old = format!("{:06}", code(secret, step_of(now) - 3));
        assert_eq!(verify(secret, &old, now, None), None, "three steps old");
        assert!(verify(secret, &format!("{} {}", &typed[..3], &typed[3..]), now, None).is_some(), "spaces ignored");
        for bad in ["", "12345", "1234567", "abcdef", "12 34 5"] {
            assert_eq!(verify(secret, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(from_base32("mzxw 6ytb oi").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(from_base32("M1"), None, "1 is not base32");
        let secret: Vec<u8> = (0..SECRET_BYTES as u8).collect();
        assert_eq!(from_base32(&base32(&secret)), Some(secret.clone()));
        let uri = otpauth_uri("acme corp", "bob@x", &secret);
        assert!(uri.starts_with("otpauth://totp/Greenlight%20%28acme%20corp%29:bob%40x?secret="), "{uri}");
        assert!(uri.ends_with("&algorithm=SHA1&digits=6&period=30"), "{uri}");
    }

    #[test]
    fn recovery_codes_are_readable_and_kept_as_hashes_of_their_characters() {
        let code = recovery_code([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(code.matches('-').count(), 2);
        assert!(code.chars().all(|c| c == '-' || c.is_ascii_lowercase() || c.is_ascii_digit()), "{code}");
        assert_ne!(recovery_code([8, 7, 6, 5, 4, 3, 2, 1]), code);
        assert_eq!(recovery_hash(&code), recovery_hash(&code.replace('-', " ").to_uppercase()));
        assert_ne!(recovery_hash(&code), recovery_hash("abcd-efgh-jkmn"));
    }
}
