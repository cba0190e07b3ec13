//! Norwegian identifiers: organisation numbers, HPR numbers, and detection of national identity
//! numbers (fødselsnummer, D-number, H-number) in free text, under both the current and the 2032
//! check-digit rules.
//!
//! The 2032 rule implemented here is the one Skatteetaten publishes for numbers issued from
//! 1 January 2032 ("Nytt fødselsnummer fra 2032", Folkeregisteret's API documentation): the
//! first check digit k1 may be any of `{11, 12, 13, 14} - (S1 mod 11)` (taken mod 11) where S1 is
//! the weighted sum of the nine first digits with weights 3,7,6,1,8,9,4,5,2 — equivalently, the
//! weighted sum *including* k1 (weight 1) must leave remainder 0, 1, 2 or 3 mod 11 instead of
//! only 0; a computed k1 of 10 is still invalid. k2 is unchanged: the weighted sum of the ten
//! first digits with weights 5,4,3,2,7,6,5,4,3,2 plus k2 must be 0 mod 11. Dates are unchanged
//! (DDMMYY; D-numbers add 4 to the first digit, H-numbers add 4 to the third). Every number valid
//! under the current rule is also valid under the 2032 rule, so detection accepts the union.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Weights of the organisation number's check digit.
const ORG_NUMBER_WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
/// Weights of the first check digit k1 over the nine first digits, then 1 for k1 itself.
const K1_WEIGHTS: [u32; 10] = [3, 7, 6, 1, 8, 9, 4, 5, 2, 1];
/// Weights of the second check digit k2 over the ten first digits, then 1 for k2 itself.
const K2_WEIGHTS: [u32; 11] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
/// The longest HPR number accepted (the register's numbers have up to nine digits today).
const HPR_NUMBER_DIGITS_MAX: usize = 9;

/// Why an identifier was refused. Never carries the refused value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("must be exactly 9 digits")]
    OrgNumberLength,
    #[error("the check digit does not match (mod 11, weights 3,2,7,6,5,4,3,2)")]
    OrgNumberCheckDigit,
    #[error("must be 1 to 9 digits")]
    HprNumberFormat,
}

/// A Norwegian organisation number (Enhetsregisteret): 9 digits, the last a mod-11 check digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgNumber(String);

impl OrgNumber {
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        let digits = ascii_digits(text).ok_or(IdentifierError::OrgNumberLength)?;
        if digits.len() != 9 {
            return Err(IdentifierError::OrgNumberLength);
        }
        let sum: u32 = digits
            .iter()
            .zip(ORG_NUMBER_WEIGHTS)
            .map(|(digit, weight)| digit * weight)
            .sum();
        let check = match sum % 11 {
            0 => 0,
            1 => return Err(IdentifierError::OrgNumberCheckDigit),
            remainder => 11 - remainder,
        };
        if check != digits[8] {
            return Err(IdentifierError::OrgNumberCheckDigit);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrgNumber {
    type Error = IdentifierError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<OrgNumber> for String {
    fn from(number: OrgNumber) -> Self {
        number.0
    }
}

impl fmt::Display for OrgNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A health-personnel register (HPR) number: 1 to 9 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HprNumber(String);

impl HprNumber {
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        match ascii_digits(text) {
            Some(digits) if !digits.is_empty() && digits.len() <= HPR_NUMBER_DIGITS_MAX => {
                Ok(Self(text.to_owned()))
            }
            _ => Err(IdentifierError::HprNumberFormat),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HprNumber {
    type Error = IdentifierError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<HprNumber> for String {
    fn from(number: HprNumber) -> Self {
        number.0
    }
}

impl fmt::Display for HprNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The kinds of national identity number recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NationalIdKind {
    /// Fødselsnummer: DDMMYY + individual number + check digits.
    BirthNumber,
    /// D-number: the day plus 40.
    DNumber,
    /// H-number (help number used in health care): the month plus 40.
    HNumber,
}

/// The kind of national identity number `digits` (exactly 11 ASCII digits) is, if any: a
/// plausible date (day 1–31, month 1–12, with the D- and H-number offsets) and check digits valid
/// under the current or the 2032 rule.
pub fn national_id_kind(digits: &[u8; 11]) -> Option<NationalIdKind> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let values: Vec<u32> = digits.iter().map(|digit| u32::from(digit - b'0')).collect();
    let day = values[0] * 10 + values[1];
    let month = values[2] * 10 + values[3];
    let (kind, day, month) = match (day, month) {
        (41..=71, _) => (NationalIdKind::DNumber, day - 40, month),
        (_, 41..=52) => (NationalIdKind::HNumber, day, month - 40),
        _ => (NationalIdKind::BirthNumber, day, month),
    };
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    check_digits_valid(&values).then_some(kind)
}

/// k1 under the 2032 rule (remainder 0–3, which includes the current rule's remainder 0) and k2
/// (remainder 0), over the digits' weighted sums including the check digit itself.
fn check_digits_valid(values: &[u32]) -> bool {
    let k1_sum: u32 = values[..10]
        .iter()
        .zip(K1_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    let k2_sum: u32 = values
        .iter()
        .zip(K2_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    k1_sum % 11 <= 3 && k2_sum % 11 == 0
}

/// True when `values` passes the current (pre-2032) rule: both remainders 0.
#[cfg(test)]
fn check_digits_valid_current_rule(values: &[u32]) -> bool {
    let k1_sum: u32 = values[..10]
        .iter()
        .zip(K1_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    let k2_sum: u32 = values
        .iter()
        .zip(K2_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    k1_sum % 11 == 0 && k2_sum % 11 == 0
}

/// True when `text` holds something shaped like a national identity number: any 11 consecutive
/// ASCII digits (also inside a longer run of digits), or 6 digits, one space, dot or dash, and 5
/// digits, that form a fødselsnummer, D-number or H-number with valid check digits (current or 2032
/// rule). Deliberately over-inclusive: a false alarm costs a rephrased field, a miss leaks a
/// patient's identity onto a replicated ledger forever.
pub fn contains_national_id_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        if !bytes[start].is_ascii_digit() {
            continue;
        }
        if let Some(window) = bytes.get(start..start + 11) {
            if let Ok(digits) = <&[u8; 11]>::try_from(window) {
                if national_id_kind(digits).is_some() {
                    return true;
                }
            }
        }
        if let Some(window) = bytes.get(start..start + 12) {
            if matches!(window[6], b' ' | b'.' | b'-') {
                let mut digits = [0u8; 11];
                digits[..6].copy_from_slice(&window[..6]);
                digits[6..].copy_from_slice(&window[7..]);
                if national_id_kind(&digits).is_some() {
                    return true;
                }
            }
        }
    }
    false
}

fn ascii_digits(text: &str) -> Option<Vec<u32>> {
    text.bytes()
        .map(|byte| byte.is_ascii_digit().then(|| u32::from(byte - b'0')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> [u8; 11] {
        text.as_bytes().try_into().unwrap()
    }

    fn values(text: &str) -> Vec<u32> {
        text.bytes().map(|byte| u32::from(byte - b'0')).collect()
    }

    // Known-valid organisation numbers pass; a changed check digit or length fails.
    #[test]
    fn organisation_numbers_are_checked_mod_11() {
        // 974760673 (Brønnøysundregistrene) and 983044778 (a public body): sums ≡ 0 mod 11 with
        // their last digit. 123456785: sum 3+4+21+24+25+24+21+16 = 138, 138 mod 11 = 6, 11-6 = 5.
        for valid in ["974760673", "123456785", "983044778"] {
            assert!(OrgNumber::parse(valid).is_ok(), "{valid}");
        }
        assert_eq!(
            OrgNumber::parse("974760674"),
            Err(IdentifierError::OrgNumberCheckDigit)
        );
        assert_eq!(
            OrgNumber::parse("97476067"),
            Err(IdentifierError::OrgNumberLength)
        );
        assert_eq!(
            OrgNumber::parse("97476067a"),
            Err(IdentifierError::OrgNumberLength)
        );
    }

    // A remainder of 1 means no valid check digit exists: every candidate is refused.
    #[test]
    fn organisation_number_remainder_one_is_invalid() {
        // 10000000: sum = 3, remainder 3 → check 8. 00000050: 5*3 = 15, 15 mod 11 = 4 → check 7.
        // 00000040: 4*3 = 12, 12 mod 11 = 1 → no check digit is valid.
        assert!(OrgNumber::parse("100000008").is_ok());
        assert!(OrgNumber::parse("000000507").is_ok());
        for last in 0..=9 {
            assert!(OrgNumber::parse(&format!("00000040{last}")).is_err());
        }
    }

    // HPR numbers are 1–9 digits.
    #[test]
    fn hpr_numbers_are_short_digit_strings() {
        assert!(HprNumber::parse("1234567").is_ok());
        assert!(HprNumber::parse("").is_err());
        assert!(HprNumber::parse("1234567890").is_err());
        assert!(HprNumber::parse("12a").is_err());
    }

    // Skatteetaten's worked example and the commonly used test number pass the current rule.
    #[test]
    fn current_rule_birth_numbers_are_recognised() {
        // 311299567xx: k1 = 11 - (241 mod 11) = 1, k2 = 11 - (215 mod 11) = 5 (fnrinfo's example).
        assert_eq!(
            national_id_kind(&digits("31129956715")),
            Some(NationalIdKind::BirthNumber)
        );
        assert!(check_digits_valid_current_rule(&values("31129956715")));
        // 02013299997 is Skatteetaten's 2032 example with remainder 0, so also valid today.
        assert!(check_digits_valid_current_rule(&values("02013299997")));
        assert_eq!(national_id_kind(&digits("31129956716")), None);
    }

    // The 2032 examples with k1 remainder 1 are valid only under the new rule, and are detected.
    #[test]
    fn rule_2032_birth_numbers_are_recognised() {
        // Skatteetaten: 301082 999 with k1 = 12 - 9 = 3 and k2 = 9.
        assert!(!check_digits_valid_current_rule(&values("30108299939")));
        assert_eq!(
            national_id_kind(&digits("30108299939")),
            Some(NationalIdKind::BirthNumber)
        );
        assert_eq!(
            national_id_kind(&digits("30108299920")),
            Some(NationalIdKind::BirthNumber)
        );
        // Remainders 2 and 3 (k1 = 4 and 5 here) with k2 recomputed: 301082 999 4 → k2.
        for k1 in [4u32, 5] {
            let mut number = values("301082999");
            number.push(k1);
            let k2_sum: u32 = number
                .iter()
                .zip(K2_WEIGHTS)
                .map(|(value, weight)| value * weight)
                .sum();
            let k2 = (11 - k2_sum % 11) % 11;
            if k2 == 10 {
                continue;
            }
            number.push(k2);
            let text: String = number
                .iter()
                .map(|value| char::from(b'0' + *value as u8))
                .collect();
            assert!(
                national_id_kind(&digits(&text)).is_some(),
                "remainder for k1={k1}"
            );
        }
        // Remainder 4 (k1 = 6) is not allowed even under the new rule.
        let mut number = values("3010829996");
        let k2_sum: u32 = number
            .iter()
            .zip(K2_WEIGHTS)
            .map(|(value, weight)| value * weight)
            .sum();
        number.push((11 - k2_sum % 11) % 11);
        if number[10] < 10 {
            let text: String = number
                .iter()
                .map(|value| char::from(b'0' + *value as u8))
                .collect();
            assert_eq!(national_id_kind(&digits(&text)), None);
        }
    }

    // D-numbers (day + 40) and H-numbers (month + 40) are recognised; impossible dates are not.
    #[test]
    fn d_and_h_numbers_are_recognised() {
        let with_check_digits = |nine: &str| -> Option<String> {
            let mut number = values(nine);
            let k1_sum: u32 = number
                .iter()
                .zip(K1_WEIGHTS)
                .map(|(value, weight)| value * weight)
                .sum();
            let k1 = (11 - k1_sum % 11) % 11;
            number.push(k1);
            let k2_sum: u32 = number
                .iter()
                .zip(K2_WEIGHTS)
                .map(|(value, weight)| value * weight)
                .sum();
            let k2 = (11 - k2_sum % 11) % 11;
            number.push(k2);
            (k1 < 10 && k2 < 10).then(|| {
                number
                    .iter()
                    .map(|value| char::from(b'0' + *value as u8))
                    .collect()
            })
        };
        let d_number = ["410185123", "410185124", "410185125"]
            .iter()
            .find_map(|nine| with_check_digits(nine))
            .unwrap();
        assert_eq!(
            national_id_kind(&digits(&d_number)),
            Some(NationalIdKind::DNumber)
        );
        let h_number = ["014185123", "014185124", "014185125"]
            .iter()
            .find_map(|nine| with_check_digits(nine))
            .unwrap();
        assert_eq!(
            national_id_kind(&digits(&h_number)),
            Some(NationalIdKind::HNumber)
        );
        let bad_date = ["321385123", "321385124", "321385125"]
            .iter()
            .find_map(|nine| with_check_digits(nine))
            .unwrap();
        assert_eq!(national_id_kind(&digits(&bad_date)), None);
    }

    // Free text is scanned in every position, plain or in 6+5 form with a space, dot or dash.
    #[test]
    fn free_text_scan_finds_embedded_numbers() {
        assert!(contains_national_id_like("31129956715"));
        assert!(contains_national_id_like("patient 311299 56715 seen"));
        assert!(contains_national_id_like("fnr:311299-56715"));
        assert!(contains_national_id_like("311299.56715"));
        assert!(contains_national_id_like(
            "https://ehr.example/p/0031129956715000"
        ));
        assert!(contains_national_id_like("ref30108299939"));
        assert!(!contains_national_id_like("31129956716"));
        assert!(!contains_national_id_like("order 12345678901 placed"));
        assert!(!contains_national_id_like("311299/56715"));
        assert!(!contains_national_id_like("Blodprøve, ærlig talt 😀"));
        assert!(!contains_national_id_like(""));
    }
}
