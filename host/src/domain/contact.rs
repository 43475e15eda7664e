//! Contact addresses: e-mail addresses and phone numbers, checked before they are stored.
//! A notifier builds message headers from them, so an address that carries a line break or a
//! second header would become a header injection in every message sent to it.

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// Not an e-mail address this host sends to.
    #[error(
        "'{0}' is not an e-mail address: use local@domain.tld with no spaces, line breaks, quotes or display name, at most 254 characters"
    )]
    Email(String),
    /// Not a phone number in E.164 form.
    #[error("'{0}' is not a phone number: use E.164 form, a '+' and 7 to 15 digits, e.g. +4915112345678")]
    Phone(String),
}

/// Checks an e-mail address: the dot-atom form of RFC 5322 (what people type), ASCII only,
/// a domain of at least two labels. Quoted local parts, comments and display names are refused.
pub fn check_email(address: &str) -> Result<(), ContactError> {
    let refuse = || ContactError::Email(address.escape_debug().to_string());
    if address.len() > 254 {
        return Err(refuse());
    }
    let (local, domain) = address.split_once('@').ok_or_else(refuse)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let dot_atom =
        |s: &str, ok: &dyn Fn(char) -> bool| !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(ok));
    let local_ok = local.len() <= 64 && dot_atom(local, &atext);
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let domain_ok = domain.contains('.') && domain.split('.').all(label);
    if local_ok && domain_ok { Ok(()) } else { Err(refuse()) }
}

/// Checks a phone number in E.164 form: `+`, then 7 to 15 digits, the first not zero.
pub fn check_phone(number: &str) -> Result<(), ContactError> {
    let digits = number.strip_prefix('+').unwrap_or_default();
    let ok = (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    if ok { Ok(()) } else { Err(ContactError::Phone(number.escape_debug().to_string())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_pass() {
        for ok in ["alice@example.com", "a.b+tag@mail.acme.test", "x_y-z@sub-domain.example.org", "o'neil@ie.example"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn header_injection_and_malformed_addresses_are_refused() {
        for bad in [
            "alice@example.com\r\nBcc: everyone@example.com",
            "alice@example.com\nBcc: x@y.z",
            "Alice <alice@example.com>",
            "alice@@example.com",
            "alice@example",
            "@example.com",
            "alice@",
            "al ice@example.com",
            "alice.@example.com",
            "a..b@example.com",
            "alice@-example.com",
            "alice@exa_mple.com",
            "\"alice\"@example.com",
            "alice@example.com,bob@example.com",
            "ålice@example.com",
            "",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn phone_numbers_in_e164_form() {
        for ok in ["+4915112345678", "+4930123", "+12025550123"] {
            assert_eq!(check_phone(ok), Ok(()), "{ok}");
        }
        for bad in ["4915112345678", "+49 151 123", "+0123456789", "+123456", "+1234567890123456", "+49\r\n151", ""] {
            assert!(check_phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_message_never_echoes_a_raw_line_break() {
        let e = check_email("a@b.c\r\nBcc: x").expect_err("refused").to_string();
        assert!(!e.contains('\r') && !e.contains('\n'), "{e}");
    }
}
