//! Money: integer minor units and ISO 4217 currency codes. No floats, ever.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in the currency's minor unit (cents for EUR/USD). Signed so that discounts and
/// credits can be expressed; arithmetic on it is always checked.
pub type Minor = i64;

/// The largest amount the host accepts anywhere: a unit price, a line, an order's total, an
/// adjustment, a budget or a spend limit. 10^15 minor units (ten trillion euros) is far beyond
/// any real order, and keeps every sum the host forms (a few thousand such amounts) inside
/// `i64`, so no sum ever has to wrap or saturate. The README and the OpenAPI document state it.
pub const MAX_AMOUNT_MINOR: Minor = 1_000_000_000_000_000;

/// Whether an amount lies within `-MAX_AMOUNT_MINOR..=MAX_AMOUNT_MINOR`.
pub fn within_bounds(amount: Minor) -> bool {
    (-MAX_AMOUNT_MINOR..=MAX_AMOUNT_MINOR).contains(&amount)
}

/// The sum of some amounts, or `None` when it leaves the bounds of [`MAX_AMOUNT_MINOR`] at any
/// point (or overflows `i64`, which the bound makes impossible for bounded inputs).
pub fn checked_sum(amounts: impl IntoIterator<Item = Minor>) -> Option<Minor> {
    amounts.into_iter().try_fold(0 as Minor, |t, a| t.checked_add(a).filter(|s| within_bounds(*s)))
}

/// Active ISO 4217 alphabetic codes. Kept inline so validation needs no I/O and no extra crate.
pub const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A validated ISO 4217 currency code. Orders carry one so amounts are never mixed across
/// currencies by accident.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an ISO 4217 currency code: use three upper-case letters such as EUR or USD")]
pub struct BadCurrency(pub String);

impl Currency {
    /// The code as text, for storage and display.
    pub fn as_str(&self) -> &str {
        // Only ever constructed from an entry of ISO_4217, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point of one major unit (ISO 4217's minor unit).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        }
    }

    /// An amount of minor units for people: `1,234.50 EUR`, `-7 JPY`.
    pub fn format(&self, amount: Minor) -> String {
        let exp = self.exponent();
        let unit = 10u128.pow(exp);
        let abs = amount.unsigned_abs() as u128;
        let (major, minor) = (abs / unit, abs % unit);
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if amount < 0 { "-" } else { "" };
        if exp == 0 {
            format!("{sign}{grouped} {}", self.as_str())
        } else {
            format!("{sign}{grouped}.{minor:0width$} {}", self.as_str(), width = exp as usize)
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = BadCurrency;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.as_str().parse()
    }
}

impl std::str::FromStr for Currency {
    type Err = BadCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if ISO_4217.binary_search(&s).is_ok() {
            let b = s.as_bytes();
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(BadCurrency(s.to_string()))
        }
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_list_is_sorted_so_binary_search_works() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn accepts_known_codes_and_refuses_others() {
        assert_eq!("EUR".parse::<Currency>().map(|c| c.to_string()), Ok("EUR".into()));
        assert!("eur".parse::<Currency>().is_err());
        assert!("XYZ".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
        assert!("".parse::<Currency>().is_err());
    }

    #[test]
    fn sums_stop_at_the_bound_instead_of_wrapping() {
        assert_eq!(checked_sum([1, 2, 3]), Some(6));
        assert_eq!(checked_sum([MAX_AMOUNT_MINOR, 1]), None);
        assert_eq!(checked_sum([Minor::MAX, Minor::MAX]), None);
        assert_eq!(checked_sum([MAX_AMOUNT_MINOR, -MAX_AMOUNT_MINOR]), Some(0));
        assert_eq!(checked_sum([]), Some(0));
    }

    #[test]
    fn round_trips_through_json() {
        let c: Currency = serde_json::from_str("\"CHF\"").expect("valid code");
        assert_eq!(serde_json::to_string(&c).expect("serializes"), "\"CHF\"");
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }

    #[test]
    fn amounts_are_formatted_with_the_currency_minor_unit() {
        let c = |s: &str| s.parse::<Currency>().expect("a currency");
        assert_eq!(c("EUR").format(123_450), "1,234.50 EUR");
        assert_eq!(c("EUR").format(5), "0.05 EUR");
        assert_eq!(c("EUR").format(-100), "-1.00 EUR");
        assert_eq!(c("JPY").format(1_000_000), "1,000,000 JPY");
        assert_eq!(c("KWD").format(1_234), "1.234 KWD");
        assert_eq!(c("USD").format(i64::MIN), "-92,233,720,368,547,758.08 USD");
    }
}
