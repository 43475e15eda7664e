//! Approve and reject links in the e-mail that tells an approver a stage opened for them.
//!
//! A link is a bearer capability for one decision, so it carries everything it is good for and
//! is signed: `KEY_ID.CLAIMS.MAC`, where `CLAIMS` is the base64url (unpadded) compact JSON of
//! [`LinkClaims`] and `MAC` the base64url HMAC-SHA256 of `KEY_ID.CLAIMS` under the operator's
//! key of that id. The claims bind the link to a tenant, an order *at one version*, a stage, an
//! approver and a verdict, with an expiry and a nonce (the host records used nonces: single
//! use). Keys rotate: the first key of the operator's file signs, every listed key verifies, so
//! an old key stays listed until the links it signed have expired.
//!
//! Pure: no clock (callers pass `now`), no storage, no I/O.

use crate::domain::plan::Verdict;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The fewest secret bytes a key may have: as many as the MAC has.
pub const MIN_SECRET_BYTES: usize = 32;

/// The longest token accepted; a real one is about 350 characters.
pub const MAX_TOKEN_CHARS: usize = 1_024;

/// What a link is good for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The tenant's id.
    #[serde(rename = "t")]
    pub tenant_id: String,
    /// The order.
    #[serde(rename = "o")]
    pub order_id: String,
    /// The order's version when the stage opened: any change since voids the link.
    #[serde(rename = "v")]
    pub version: u64,
    /// The stage's key.
    #[serde(rename = "s")]
    pub stage: String,
    /// The user name of the approver it was sent to; the decision is theirs.
    #[serde(rename = "a")]
    pub approver: String,
    /// Approve or reject.
    #[serde(rename = "d")]
    pub verdict: Verdict,
    /// The end of its validity, in Unix seconds (UTC).
    #[serde(rename = "e")]
    pub expires: i64,
    /// Random, recorded when used.
    #[serde(rename = "n")]
    pub nonce: String,
}

/// Why a link is not honored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link this host makes (cut off in the mail client, or made up).
    #[error("this link is incomplete or damaged: open the newest e-mail again, or decide in the dashboard")]
    Malformed,
    /// Signed with a key the operator no longer lists, or not signed by this host at all.
    #[error("this link was not made by this Greenlight, or its key was retired: decide in the dashboard")]
    Forged,
    /// Past its expiry.
    #[error("this link expired at {0}: decide in the dashboard")]
    Expired(DateTime<Utc>),
}

/// Why the operator's key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LinkKeysError {
    /// Not TOML of the documented shape.
    #[error("the link key file is not valid: {0}; expected [[keys]] tables with `id` and `secret` (hex)")]
    Syntax(String),
    /// A key that cannot be used.
    #[error("link key '{id}': {problem}")]
    Key {
        /// The key's id.
        id: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// No key at all.
    #[error("the link key file lists no key: add a [[keys]] table with `id` and `secret`")]
    Empty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    secret: String,
}

/// The operator's signing keys, newest first.
#[derive(Clone)]
pub struct LinkKeys {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("LinkKeys").field("ids", &ids).finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn mac(secret: &[u8], signed: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(signed.as_bytes());
    m
}

impl LinkKeys {
    /// Reads the operator's key file:
    ///
    /// ```toml
    /// [[keys]]          # the first key signs new links
    /// id = "2026-12"
    /// secret = "…64 hex digits or more…"
    /// [[keys]]          # older keys only verify, until their links expire
    /// id = "2026-11"
    /// secret = "…"
    /// ```
    pub fn parse(text: &str) -> Result<LinkKeys, LinkKeysError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| LinkKeysError::Syntax(e.message().to_string()))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let problem = |p: &str| LinkKeysError::Key { id: k.id.clone(), problem: p.to_string() };
            if !valid_id(&k.id) {
                return Err(problem("an id has 1 to 32 letters, digits, '-' or '_'"));
            }
            if keys.iter().any(|(id, _)| *id == k.id) {
                return Err(problem("listed twice; give every key its own id"));
            }
            let secret = hex::decode(k.secret.trim()).map_err(|_| problem("the secret must be hex digits"))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(problem("the secret needs at least 32 bytes (64 hex digits), e.g. `openssl rand -hex 32`"));
            }
            keys.push((k.id, secret));
        }
        if keys.is_empty() {
            return Err(LinkKeysError::Empty);
        }
        Ok(LinkKeys { keys })
    }

    /// The id of the key that signs new links.
    pub fn signing_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Makes the token of a link with the signing key.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        let (id, secret) = &self.keys[0];
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{id}.{body}");
        let tag = URL_SAFE_NO_PAD.encode(mac(secret, &signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// Checks a token's signature (in constant time) and expiry, and returns what it is good
    /// for. Whether it was used, and whether the order moved since, are the caller's to check.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(LinkError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(id), Some(body), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(LinkError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Malformed)?;
        let (_, secret) = self.keys.iter().find(|(k, _)| k == id).ok_or(LinkError::Forged)?;
        mac(secret, &format!("{id}.{body}")).verify_slice(&tag).map_err(|_| LinkError::Forged)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| LinkError::Malformed)?;
        let claims: LinkClaims = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        let expires = DateTime::from_timestamp(claims.expires, 0).ok_or(LinkError::Malformed)?;
        if now >= expires {
            return Err(LinkError::Expired(expires));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[keys]]
        id = "new"
        secret = "0000000000000000000000000000000000000000000000000000000000000001"
        [[keys]]
        id = "old"
        secret = "0000000000000000000000000000000000000000000000000000000000000002"
    "#;

    fn claims(expires: i64) -> LinkClaims {
        LinkClaims {
            tenant_id: "t".into(),
            order_id: "o".into(),
            version: 3,
            stage: "manager".into(),
            approver: "bob".into(),
            verdict: Verdict::Approve,
            expires,
            nonce: "n".into(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let keys = LinkKeys::parse(FILE).expect("keys");
        let token = keys.sign(&claims(1_000));
        assert!(token.starts_with("new."), "the first key signs: {token}");
        assert_eq!(keys.verify(&token, at(999)), Ok(claims(1_000)));
        assert_eq!(keys.verify(&token, at(1_000)), Err(LinkError::Expired(at(1_000))));
    }

    fn only(id: &str, secret_digit: char) -> LinkKeys {
        let text = format!("[[keys]]\nid = \"{id}\"\nsecret = \"{}\"\n", secret_digit.to_string().repeat(64));
        LinkKeys::parse(&text).expect("keys")
    }

    #[test]
    fn an_older_listed_key_still_verifies_and_a_retired_one_does_not() {
        let keys = LinkKeys::parse(FILE).expect("keys");
        let by_old = LinkKeys::parse(&FILE.replacen("\"new\"", "\"gone\"", 1)).expect("keys");
        // Signed by "gone", which this host no longer lists.
        assert_eq!(keys.verify(&by_old.sign(&claims(1_000)), at(0)), Err(LinkError::Forged));
        // A link the older key "old" signed, before "new" was put in front of it.
        let old = LinkKeys::parse(&FILE[FILE.rfind("[[keys]]").expect("two keys")..]).expect("keys");
        assert_eq!(keys.verify(&old.sign(&claims(1_000)), at(0)), Ok(claims(1_000)));
        // The same id with another secret is a forgery.
        assert_eq!(keys.verify(&only("old", '7').sign(&claims(1_000)), at(0)), Err(LinkError::Forged));
    }

    #[test]
    fn any_change_to_a_token_makes_it_refused() {
        let keys = LinkKeys::parse(FILE).expect("keys");
        let token = keys.sign(&claims(1_000));
        // Change the claims (another stage) but keep the tag: forged.
        let (head, tag) = token.rsplit_once('.').expect("three parts");
        let (id, _) = head.split_once('.').expect("id");
        let mut other = claims(1_000);
        other.stage = "finance".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json"));
        assert_eq!(keys.verify(&format!("{id}.{body}.{tag}"), at(0)), Err(LinkError::Forged));
        for bad in ["", "a.b", "a.b.c.d", "new.@@.@@", &token[..token.len() - 2]] {
            assert!(keys.verify(bad, at(0)).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(keys.verify(&"x".repeat(MAX_TOKEN_CHARS + 1), at(0)), Err(LinkError::Malformed));
    }

    #[test]
    fn key_files_that_cannot_be_used_say_why() {
        for (text, says) in [
            ("", "missing field `keys`"),
            ("keys = []", "lists no key"),
            ("[[keys]]\nid = \"a b\"\nsecret = \"00\"", "an id has"),
            ("[[keys]]\nid = \"a\"\nsecret = \"zz\"", "hex digits"),
            ("[[keys]]\nid = \"a\"\nsecret = \"0011\"", "at least 32 bytes"),
        ] {
            let e = LinkKeys::parse(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let twice = "[[keys]]\nid = \"a\"\nsecret = \"{s}\"\n[[keys]]\nid = \"a\"\nsecret = \"{s}\"\n"
            .replace("{s}", &"1".repeat(64));
        assert!(LinkKeys::parse(&twice).expect_err("twice").to_string().contains("listed twice"));
        let keys = LinkKeys::parse(FILE).expect("keys");
        assert!(!format!("{keys:?}").contains("0000"), "Debug never shows a secret");
    }
}
