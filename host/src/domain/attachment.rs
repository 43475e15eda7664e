//! Attachments (R9): documents kept with an order — quotes, contracts, invoices. Each is known by
//! the SHA-256 of its bytes, so the same document attached twice is stored once and the audit
//! trail can name exactly what was attached. Pure: naming and typing rules only.

use serde::{Deserialize, Serialize};

/// Longest file name kept, in bytes.
pub const MAX_FILENAME: usize = 200;

/// One document attached to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    /// SHA-256 of the bytes, hex: the document's identity.
    pub sha256: String,
    /// The file name, sanitized.
    pub filename: String,
    /// Bytes.
    pub size: u64,
    /// The media type the host serves it with.
    pub content_type: String,
    /// Who attached it.
    pub added_by: String,
    /// When, in UTC.
    pub added_at: String,
}

/// Why a file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is no usable file name: give the document's name, e.g. quote.pdf (letters, digits, spaces, '.', '-', '_', '(' and ')')"
)]
pub struct BadFilename(pub String);

/// The name a document is kept and offered under: the last path segment only (no folders, so
/// no `../`), control characters dropped, anything outside letters, digits, space and `._-()`
/// replaced by `_`, at most [`MAX_FILENAME`] bytes keeping the extension. A name with nothing
/// usable left is refused.
pub fn sanitize_filename(name: &str) -> Result<String, BadFilename> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c.is_ascii_alphanumeric() || " ._-()".contains(c) { c } else { '_' })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '_' || c == '.' || c == ' ') {
        return Err(BadFilename(name.escape_debug().to_string()));
    }
    if cleaned.len() <= MAX_FILENAME {
        return Ok(cleaned);
    }
    // Too long: keep the extension (if short) and as much of the stem as fits.
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((s, e)) if e.len() <= 16 && !s.is_empty() => (s, format!(".{e}")),
        _ => (cleaned.as_str(), String::new()),
    };
    Ok(format!("{}{ext}", &stem[..MAX_FILENAME - ext.len()]))
}

/// The media type to serve a document with: from its first bytes where they say (PDF, PNG,
/// JPEG, GIF, ZIP-based office files), else from the file name's extension, else
/// `application/octet-stream`. Whatever it is, downloads go out as attachments that the browser
/// must not sniff or run.
pub fn content_type(filename: &str, bytes: &[u8]) -> &'static str {
    const MAGIC: [(&[u8], &str); 4] = [
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
    ];
    if let Some((_, t)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return t;
    }
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "svg" => "image/svg+xml",
        "xml" => "application/xml",
        "json" => "application/json",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_folders_controls_and_odd_characters() {
        assert_eq!(sanitize_filename("quote.pdf").as_deref(), Ok("quote.pdf"));
        assert_eq!(sanitize_filename("../../etc/passwd").as_deref(), Ok("passwd"));
        assert_eq!(
            sanitize_filename("C:\\Users\\x\\Angebot 2026 (final).pdf").as_deref(),
            Ok("Angebot 2026 (final).pdf")
        );
        assert_eq!(sanitize_filename("a\r\nb<script>.html").as_deref(), Ok("ab_script_.html"));
        assert_eq!(sanitize_filename(".bashrc").as_deref(), Ok("bashrc"));
        assert_eq!(sanitize_filename("Größe.pdf").as_deref(), Ok("Gr__e.pdf"));
        for bad in ["", "/", "..", "../", "\u{0}\u{7}", "???"] {
            assert!(sanitize_filename(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}.pdf", "x".repeat(500));
        let kept = sanitize_filename(&long).expect("kept");
        assert_eq!(kept.len(), MAX_FILENAME);
        assert!(kept.ends_with(".pdf"));
    }

    #[test]
    fn types_come_from_the_bytes_first() {
        assert_eq!(content_type("x.txt", b"%PDF-1.7 ..."), "application/pdf");
        assert_eq!(content_type("x.pdf", b"hello"), "application/pdf");
        assert_eq!(content_type("x.SVG", b"<svg/>"), "image/svg+xml");
        assert_eq!(content_type("x", b"\x00\x01"), "application/octet-stream");
    }
}
