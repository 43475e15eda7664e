//! The audit chain: each entry's hash covers the previous entry's hash and the entry's canonical
//! bytes, so changing, removing, reordering or inserting an entry breaks every hash after it.
//! Pure functions; the store persists entries and the API and CLI call [`verify`].

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a tenant's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry, as stored and exported (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the tenant's chain, from 1, without gaps.
    pub seq: u64,
    /// When, in UTC (RFC 3339, microseconds).
    pub at: String,
    /// Who: a user name, or `system`.
    pub actor: String,
    /// What: e.g. `stage_approved`, `user_created`.
    pub action: String,
    /// The order concerned, if any.
    pub order_id: Option<String>,
    /// Details of the action.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Hash of the previous entry (or [`GENESIS`]).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this entry's canonical bytes, hex.
    pub hash: String,
}

/// Formats a time the one way the chain hashes it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The bytes an entry's hash covers. Generic over `data` so the writer (a `Value`) and the
/// store's verifier (the stored JSON text, unparsed) serialize through the same code.
#[derive(Serialize)]
struct Canonical<'a, D: Serialize + ?Sized> {
    seq: u64,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    order_id: Option<&'a str>,
    data: &'a D,
}

/// The SHA-256 over `prev_hash`, a newline and the entry's canonical bytes, serialized straight
/// into the hasher (no intermediate buffer). Writing to a hasher cannot fail.
fn digest<D: Serialize + ?Sized>(prev_hash: &str, canonical: &Canonical<'_, D>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    let _ = serde_json::to_writer(HashWriter(&mut h), canonical);
    h.finalize().into()
}

/// The SHA-256 an entry must have, from its fields with `data` as the JSON text the store keeps
/// (compact, keys sorted: what the writer hashed). Used to verify a stored chain without parsing
/// and re-serializing every entry's data; text that is not exactly what was written does not
/// match.
pub fn entry_digest_raw(
    prev_hash: &str,
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    order_id: Option<&str>,
    data: &serde_json::value::RawValue,
) -> [u8; 32] {
    digest(prev_hash, &Canonical { seq, at, actor, action, order_id, data })
}

/// Lets serde_json write straight into a SHA-256.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The hash an entry with these fields must have. `data` is serialized with sorted keys and no
/// floats, so the same entry always hashes the same.
pub fn entry_hash(
    prev_hash: &str,
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    order_id: Option<&str>,
    data: &serde_json::Value,
) -> String {
    hex::encode(digest(prev_hash, &Canonical { seq, at, actor, action, order_id, data }))
}

impl AuditEntry {
    /// Builds the next entry of a chain whose last entry had `prev` (seq, hash).
    pub fn next(
        prev: Option<(u64, &str)>,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        order_id: Option<&str>,
        data: serde_json::Value,
    ) -> AuditEntry {
        let (seq, prev_hash) = match prev {
            Some((s, h)) => (s + 1, h.to_string()),
            None => (1, GENESIS.to_string()),
        };
        let at = timestamp(at);
        let hash = entry_hash(&prev_hash, seq, &at, actor, action, order_id, &data);
        AuditEntry {
            seq,
            at,
            actor: actor.into(),
            action: action.into(),
            order_id: order_id.map(Into::into),
            data,
            prev_hash,
            hash,
        }
    }

    /// The hash this entry's fields call for.
    pub fn expected_hash(&self) -> String {
        entry_hash(&self.prev_hash, self.seq, &self.at, &self.actor, &self.action, self.order_id.as_deref(), &self.data)
    }
}

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// Whether every entry checks out.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first entry that does not check out.
    pub first_bad_seq: Option<u64>,
    /// What is wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Hash of the last entry: record it elsewhere to detect truncation later.
    pub head_hash: String,
}

/// Incremental verifier, so a million-entry chain is checked as it streams from the database.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev_hash: String,
    expected_seq: u64,
    entries: u64,
    bad: Option<(u64, String)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier { prev_hash: GENESIS.to_string(), expected_seq: 1, entries: 0, bad: None }
    }
}

impl Verifier {
    /// Checks the next entry in seq order. After the first bad entry, the rest are only counted.
    pub fn push(&mut self, e: &AuditEntry) {
        self.check(e.seq, &e.prev_hash, &e.hash, || e.expected_hash() == e.hash);
    }

    /// Checks the next entry from its parts: `content_ok` says whether its content matches its
    /// hash, and is only asked when the entry is in place (the store passes a check on the raw
    /// stored bytes, see [`entry_digest_raw`]).
    pub fn check(&mut self, seq: u64, prev_hash: &str, hash: &str, content_ok: impl FnOnce() -> bool) {
        self.entries += 1;
        if self.bad.is_some() {
            return;
        }
        let problem = if seq != self.expected_seq {
            Some(format!(
                "expected entry {} here, found entry {seq} (an entry was removed, inserted or moved)",
                self.expected_seq
            ))
        } else if prev_hash != self.prev_hash {
            Some("prev_hash does not match the previous entry (an entry was removed, inserted or moved)".to_string())
        } else if !content_ok() {
            Some("the entry's content does not match its hash (it was changed)".to_string())
        } else {
            None
        };
        match problem {
            Some(p) => self.bad = Some((self.expected_seq.min(seq), p)),
            None => {
                self.prev_hash.clear();
                self.prev_hash.push_str(hash);
                self.expected_seq += 1;
            }
        }
    }

    /// The verdict.
    pub fn finish(self) -> VerifyReport {
        VerifyReport {
            ok: self.bad.is_none(),
            entries: self.entries,
            first_bad_seq: self.bad.as_ref().map(|b| b.0),
            problem: self.bad.map(|b| b.1),
            head_hash: self.prev_hash,
        }
    }
}

/// Verifies a whole chain held in memory.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> VerifyReport {
    let mut v = Verifier::default();
    for e in entries {
        v.push(e);
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            out.push(AuditEntry::next(prev, Utc::now(), "alice", "order_edited", Some("o1"), json!({"i": i})));
        }
        out
    }

    #[test]
    fn the_raw_digest_of_the_stored_text_is_the_entry_hash() {
        let data = json!({"z": "last", "a": [1, 2, {"b": null}], "reason": "quote \" and é"});
        let e = AuditEntry::next(None, Utc::now(), "bob", "order_rejected", None, data.clone());
        let stored = serde_json::to_string(&data).expect("json");
        let raw: &serde_json::value::RawValue = serde_json::from_str(&stored).expect("raw");
        let digest = entry_digest_raw(&e.prev_hash, e.seq, &e.at, &e.actor, &e.action, None, raw);
        assert_eq!(hex::encode(digest), e.hash);
        // The same content with other whitespace is not what was hashed.
        let spaced = stored.replace(':', ": ");
        let raw: &serde_json::value::RawValue = serde_json::from_str(&spaced).expect("raw");
        let digest = entry_digest_raw(&e.prev_hash, e.seq, &e.at, &e.actor, &e.action, None, raw);
        assert_ne!(hex::encode(digest), e.hash);
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let r = verify(&c);
        assert!(r.ok);
        assert_eq!(r.entries, 5);
        assert_eq!(r.head_hash, c[4].hash);
    }

    #[test]
    fn edit_is_detected_at_the_entry() {
        let mut c = chain(5);
        c[2].data = json!({"i": 99});
        assert_eq!(verify(&c).first_bad_seq, Some(3));
    }

    #[test]
    fn removal_is_detected() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).first_bad_seq, Some(2));
    }

    #[test]
    fn reorder_is_detected() {
        let mut c = chain(5);
        c.swap(1, 3);
        assert_eq!(verify(&c).first_bad_seq, Some(2));
    }

    #[test]
    fn rehashed_edit_still_breaks_the_next_link() {
        let mut c = chain(5);
        c[2].actor = "mallory".into();
        c[2].hash = c[2].expected_hash();
        assert_eq!(verify(&c).first_bad_seq, Some(4));
    }

    #[test]
    fn key_order_in_data_does_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":2}"#).expect("json");
        let b: serde_json::Value = serde_json::from_str(r#"{"a":2,"b":1}"#).expect("json");
        assert_eq!(entry_hash(GENESIS, 1, "t", "x", "y", None, &a), entry_hash(GENESIS, 1, "t", "x", "y", None, &b));
    }
}
