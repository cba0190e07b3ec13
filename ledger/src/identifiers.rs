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

/// The number of digits of a national identity number.
pub const NATIONAL_ID_DIGITS: usize = 11;

/// The kind of national identity number `digits` (exactly 11 ASCII digits) is, if any: a
/// plausible date (day 1–31, month 1–12, with the D- and H-number offsets) and check digits valid
/// under the current or the 2032 rule.
pub fn national_id_kind(digits: &[u8; 11]) -> Option<NationalIdKind> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    kind_of_values(&digits.map(|digit| digit - b'0'))
}

/// [`national_id_kind`] over digit values 0–9.
fn kind_of_values(digits: &[u8; 11]) -> Option<NationalIdKind> {
    let values = digits.map(u32::from);
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

/// True when `text` holds something shaped like a national identity number: 11 consecutive
/// digits (also inside a longer run) that form a fødselsnummer, D-number or H-number with valid
/// check digits (current or 2032 rule), where
///
/// - a digit is any Unicode decimal digit (general category Nd: ASCII, fullwidth, Arabic-Indic,
///   Devanagari, mathematical, … — [`ND_ZEROS`]) or a compatibility form of digits (superscript,
///   subscript, circled, parenthesised, with full stop or comma — [`COMPATIBILITY_DIGITS`]; a
///   circled 12 counts as the digits 1 and 2);
/// - the 11 digits stand together, also inside a longer run of digits, or they are whole groups of
///   digits with only separators between the groups (6+5, 2+2+2+5, 6+3+2, 4+2+5, or a separator
///   after every digit): any number of separators, each one of every Unicode White_Space
///   character, `+`, hyphens and dashes, full stops and dots, invisible formatting characters and
///   combining marks ([`is_separator`]); anything else (letters, `/`, `:`, `,`, …) ends the
///   chain of groups. Groups are taken whole so that unrelated numbers next to each other
///   (`python-1764585695123-4711`, `31.12.2025 14.30`) are not read as one long run;
/// - the text is scanned as written and again after URI-style decoding, repeated while it changes
///   (at most [`DECODE_ROUNDS`] times): `%XX` percent-escapes in either case (also partial, and
///   of separators or of UTF-8 sequences) and HTML numeric character references (`&#51;`,
///   `&#x33;`).
///
/// Deliberately over-inclusive: a false alarm costs a rephrased field, a miss leaks a patient's
/// identity onto a replicated ledger forever. The date and the check digits keep false alarms
/// rare: about 1 in 270 random 11-digit strings passes.
pub fn contains_national_id_like(text: &str) -> bool {
    let mut variant = std::borrow::Cow::Borrowed(text);
    for _ in 0..=DECODE_ROUNDS {
        if scan_for_national_id(&variant) {
            return true;
        }
        match uri_decode(&variant) {
            Some(decoded) => variant = std::borrow::Cow::Owned(decoded),
            None => break,
        }
    }
    false
}

/// How many times [`contains_national_id_like`] decodes escapes again (double encoding `%2533`).
pub const DECODE_ROUNDS: usize = 4;

/// True when `bytes` holds 11 consecutive ASCII digits (0x30–0x39), whatever they spell. The rule
/// for binary fields (nonce, hashes, pseudonyms, ids, signatures): random bytes have such a run
/// with a probability of about 22 · (10/256)^11, below 10^-14 for 32 bytes.
pub fn contains_ascii_digit_run(bytes: &[u8]) -> bool {
    bytes
        .split(|byte| !byte.is_ascii_digit())
        .any(|run| run.len() >= NATIONAL_ID_DIGITS)
}

/// True when `bytes`, read as ASCII, holds 11 consecutive ASCII digits that form a valid national
/// identity number. Used on a whole encoded body, where tags and lengths stand between fields.
pub fn contains_plain_national_id(bytes: &[u8]) -> bool {
    bytes.windows(NATIONAL_ID_DIGITS).any(|window| {
        <&[u8; 11]>::try_from(window).is_ok_and(|digits| national_id_kind(digits).is_some())
    })
}

/// True when a binary field's bytes look like a national identity number in any way: an ASCII
/// digit run ([`contains_ascii_digit_run`]), or, read as UTF-8 (invalid sequences break runs), the
/// text rule ([`contains_national_id_like`]).
pub fn bytes_contain_national_id_like(bytes: &[u8]) -> bool {
    contains_ascii_digit_run(bytes) || contains_national_id_like(&String::from_utf8_lossy(bytes))
}

/// The scan of one variant of the text. Digits form groups; groups with only separators between
/// them form a chain; anything else ends the chain. A number is found as 11 consecutive digits
/// inside one group, or as whole consecutive groups of one chain with 11 digits in all.
fn scan_for_national_id(text: &str) -> bool {
    let mut chain = Chain::default();
    for character in text.chars() {
        if let Some(digits) = digits_of(character) {
            for &digit in digits.as_slice() {
                if chain.push_digit(digit) {
                    return true;
                }
            }
        } else if is_separator(character) {
            if chain.close_group() {
                return true;
            }
        } else {
            if chain.close_group() {
                return true;
            }
            chain.groups.clear();
        }
    }
    chain.close_group()
}

/// The groups of digits of the current chain (the last 11 at most: a group has at least one
/// digit) and the group being read.
#[derive(Debug, Default)]
struct Chain {
    groups: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl Chain {
    /// Adds a digit to the current group; true when the group's last 11 digits are a number.
    fn push_digit(&mut self, digit: u8) -> bool {
        self.current.push(digit);
        let length = self.current.len();
        length >= NATIONAL_ID_DIGITS
            && <&[u8; 11]>::try_from(&self.current[length - NATIONAL_ID_DIGITS..])
                .is_ok_and(|digits| kind_of_values(digits).is_some())
    }

    /// Ends the current group (if any); true when whole groups ending with it hold 11 digits that
    /// are a number.
    fn close_group(&mut self) -> bool {
        if self.current.is_empty() {
            return false;
        }
        self.groups.push(std::mem::take(&mut self.current));
        if self.groups.len() > NATIONAL_ID_DIGITS {
            self.groups.remove(0);
        }
        let mut total = 0;
        for (index, group) in self.groups.iter().enumerate().rev() {
            total += group.len();
            if total == NATIONAL_ID_DIGITS && index + 1 < self.groups.len() {
                let digits: Vec<u8> = self.groups[index..].concat();
                return <&[u8; 11]>::try_from(digits.as_slice())
                    .is_ok_and(|digits| kind_of_values(digits).is_some());
            }
            if total >= NATIONAL_ID_DIGITS {
                break;
            }
        }
        false
    }
}

/// One or two digit values (a circled 12 is two digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digits {
    values: [u8; 2],
    len: usize,
}

impl Digits {
    fn of(number: u32) -> Self {
        if number < 10 {
            Self {
                values: [number as u8, 0],
                len: 1,
            }
        } else {
            Self {
                values: [(number / 10) as u8, (number % 10) as u8],
                len: 2,
            }
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.values[..self.len]
    }
}

/// The code point of digit zero of every run of Unicode decimal digits (general category Nd,
/// Unicode 17.0): each run is ten consecutive code points, zero to nine. From the Unicode
/// Character Database (`ucd-generate general-category --include decimalnumber`, 16.0) plus
/// Unicode 17.0's Tolong Siki digits (U+11DE0); a unit test checks every entry against
/// `char::is_numeric`.
pub const ND_ZEROS: [u32; 77] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450,
    0x114D0, 0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50,
    0x11D50, 0x11DA0, 0x11DE0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950,
    0x1FBF0,
];

/// Characters that are not Nd but whose compatibility decomposition is digits (superscripts,
/// subscripts, enclosed numbers), and the dingbat enclosed digits that look like them: (first code
/// point, last code point, number of the first). A number above 9 counts as its digits.
pub const COMPATIBILITY_DIGITS: [(u32, u32, u32); 21] = [
    (0x00B2, 0x00B3, 2),   // ² ³
    (0x00B9, 0x00B9, 1),   // ¹
    (0x2070, 0x2070, 0),   // ⁰
    (0x2074, 0x2079, 4),   // ⁴ … ⁹
    (0x2080, 0x2089, 0),   // ₀ … ₉
    (0x2460, 0x2473, 1),   // ① … ⑳
    (0x2474, 0x2487, 1),   // ⑴ … ⒇
    (0x2488, 0x249B, 1),   // ⒈ … ⒛
    (0x24EA, 0x24EA, 0),   // ⓪
    (0x24EB, 0x24F4, 11),  // ⓫ … ⓴
    (0x24F5, 0x24FE, 1),   // ⓵ … ⓾
    (0x24FF, 0x24FF, 0),   // ⓿
    (0x2776, 0x277F, 1),   // ❶ … ❿
    (0x2780, 0x2789, 1),   // ➀ … ➉
    (0x278A, 0x2793, 1),   // ➊ … ➓
    (0x3251, 0x325F, 21),  // ㉑ … ㉟
    (0x32B1, 0x32BF, 36),  // ㊱ … ㊿
    (0x1F100, 0x1F100, 0), // 🄀 (digit zero full stop)
    (0x1F101, 0x1F10A, 0), // 🄁 … 🄊 (digit comma)
    (0x1F10B, 0x1F10B, 0), // 🄋 (circled sans-serif zero)
    (0x1F10C, 0x1F10C, 0), // 🄌 (negative circled sans-serif zero)
];

/// The digit values `character` stands for, if it is a digit.
fn digits_of(character: char) -> Option<Digits> {
    let code = u32::from(character);
    if character.is_ascii_digit() {
        return Some(Digits::of(code - 0x30));
    }
    let index = ND_ZEROS.partition_point(|zero| *zero <= code);
    if index > 0 && code - ND_ZEROS[index - 1] < 10 {
        return Some(Digits::of(code - ND_ZEROS[index - 1]));
    }
    COMPATIBILITY_DIGITS
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&code))
        .map(|(first, _, number)| Digits::of(number + (code - first)))
}

/// Characters that may stand between the digits of a national identity number without ending the
/// run: spaces (every Unicode White_Space character, and `+`, a space in URI query strings),
/// hyphens, dashes and minus signs, full stops and dots, and invisible characters (format
/// characters such as the zero-width space and joiners, the soft hyphen, word joiner, byte order
/// mark, bidirectional marks, variation selectors, tags) and combining marks (e.g. the keycap
/// U+20E3 or a combining underline).
pub fn is_separator(character: char) -> bool {
    if character.is_whitespace() {
        return true;
    }
    matches!(
        u32::from(character),
        // Space-like and dashes in ASCII: plus (query strings), hyphen-minus, full stop.
        0x2B | 0x2D | 0x2E
        // Hyphens, dashes and minus signs.
        | 0x02D7 | 0x058A | 0x05BE | 0x1400 | 0x1806 | 0x2010..=0x2015 | 0x2043 | 0x207B
        | 0x208B | 0x2212 | 0x2796 | 0x2E17 | 0x2E1A | 0x2E3A | 0x2E3B | 0x2E40 | 0x2E5D
        | 0x301C | 0x3030 | 0x30A0 | 0xFE31 | 0xFE32 | 0xFE58 | 0xFE63 | 0xFF0D | 0x10EAD
        // Full stops, middle dots and bullets.
        | 0x00B7 | 0x0387 | 0x06D4 | 0x0701 | 0x0702 | 0x16EB | 0x2022 | 0x2023 | 0x2024
        | 0x2027 | 0x2219 | 0x22C5 | 0x25CF | 0x25E6 | 0x2981 | 0x2E31 | 0x2E33 | 0x3002
        | 0x30FB | 0xFE52 | 0xFF0E | 0xFF61 | 0xFF65
        // Invisible format characters and fillers.
        | 0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0x3164
        | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF
        // Combining marks.
        | 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF
        | 0xFE20..=0xFE2F
    )
}

/// One round of URI-style decoding: `%XX` escapes (either case) to bytes, and HTML numeric
/// character references to characters; the bytes are then read as UTF-8, invalid sequences
/// becoming U+FFFD (which ends a run of digits). `None` when there was nothing to decode.
fn uri_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = bytes.get(index + 1).and_then(|byte| hex_value(*byte));
            let low = bytes.get(index + 2).and_then(|byte| hex_value(*byte));
            if let (Some(high), Some(low)) = (high, low) {
                out.push(high * 16 + low);
                index += 3;
                changed = true;
                continue;
            }
        }
        if bytes[index] == b'&' {
            if let Some((character, used)) = character_reference(&bytes[index..]) {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                index += used;
                changed = true;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|value| value as u8)
}

/// `&#NNN;` or `&#xHHH;` (the `;` optional, as browsers accept) at the start of `bytes`: the
/// character and the number of bytes used.
fn character_reference(bytes: &[u8]) -> Option<(char, usize)> {
    let rest = bytes.strip_prefix(b"&#")?;
    let (radix, digits_start) = match rest.first() {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let digits = bytes[digits_start..]
        .iter()
        .take_while(|byte| char::from(**byte).is_digit(radix))
        .take(8)
        .count();
    if digits == 0 {
        return None;
    }
    let number = std::str::from_utf8(&bytes[digits_start..digits_start + digits]).ok()?;
    let character = char::from_u32(u32::from_str_radix(number, radix).ok()?)?;
    let mut used = digits_start + digits;
    if bytes.get(used) == Some(&b';') {
        used += 1;
    }
    Some((character, used))
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

    /// 31129956715 with each digit replaced by the same digit of the run starting at `zero`.
    fn in_script(zero: u32, number: &str) -> String {
        number
            .bytes()
            .map(|digit| char::from_u32(zero + u32::from(digit - b'0')).unwrap())
            .collect()
    }

    // The number written in other scripts' decimal digits, also mixed, is found.
    #[test]
    fn other_decimal_digits_are_digits() {
        for zero in ND_ZEROS {
            let text = format!("pasient {}", in_script(zero, "31129956715"));
            assert!(contains_national_id_like(&text), "U+{zero:04X}");
            let text = format!("pasient {}", in_script(zero, "31129956716"));
            assert!(!contains_national_id_like(&text), "U+{zero:04X}");
        }
        assert!(contains_national_id_like("３１１２９９５６７１５")); // fullwidth
        assert!(contains_national_id_like("٣١١٢٩٩٥٦٧١٥")); // Arabic-Indic
        assert!(contains_national_id_like("३११२९९५६७१५")); // Devanagari
        assert!(contains_national_id_like("𝟑𝟏𝟏𝟐𝟗𝟗𝟓𝟔𝟕𝟏𝟓")); // mathematical bold
        assert!(contains_national_id_like("31١٢९९५６7𝟏5")); // mixed
        assert!(contains_national_id_like("３０１０８２９９９３９")); // 2032 rule
    }

    // Superscript, subscript and enclosed digits count as the digits they decompose to.
    #[test]
    fn compatibility_digits_are_digits() {
        assert!(contains_national_id_like("³¹¹²⁹⁹⁵⁶⁷¹⁵"));
        assert!(contains_national_id_like("₃₁₁₂₉₉₅₆₇₁₅"));
        assert!(contains_national_id_like("③①①②⑨⑨⑤⑥⑦①⑤"));
        assert!(contains_national_id_like("❸❶❶❷❾❾❺❻❼❶❺"));
        // ⑪ is 1 1 and ⑮ is 1 5: 3 ⑪ 2 ⑨ ⑨ ⑤ ⑥ ⑦ ⑮.
        assert!(contains_national_id_like("3⑪2⑨⑨⑤⑥⑦⑮"));
        assert!(contains_national_id_like("⒊⒈⒈⒉⒐⒐⒌⒍⒎⒈⒌"));
        assert!(!contains_national_id_like("③①①②⑨⑨⑤⑥⑦①⑥"));
    }

    // Any mix of spaces, dashes, dots and invisible characters may stand between any digits.
    #[test]
    fn separators_between_digits_are_skipped() {
        for text in [
            "311299 56715",
            "31 12 99 56715",
            "311299 567 15",
            "3 1 1 2 9 9 5 6 7 1 5",
            "311299\u{a0}56715",                   // no-break space
            "311299\u{202f}56715",                 // narrow no-break space
            "31\u{2009}12\u{2009}99\u{2009}56715", // thin space
            "311299\u{3000}56715",                 // ideographic space
            "3\u{200b}1\u{200b}1\u{200b}2\u{200b}9\u{200b}9\u{200b}5\u{200b}6\u{200b}7\u{200b}1\u{200b}5",
            "311299\u{200d}56715", // zero-width joiner
            "311299\u{2060}56715", // word joiner
            "311299\u{feff}56715", // byte order mark
            "311299\u{ad}56715",   // soft hyphen
            "311299\u{2011}56715", // non-breaking hyphen
            "311299\u{2013}56715", // en dash
            "311299\u{2014}56715", // em dash
            "311299\u{2212}56715", // minus sign
            "311299\u{2012}56715", // figure dash
            "311299\u{fe63}56715", // small hyphen-minus
            "311299\u{ff0d}56715", // fullwidth hyphen-minus
            "31.12.99.56715",
            "311299\u{ff0e}56715", // fullwidth full stop
            "311299\u{b7}56715",   // middle dot
            "311299\u{2022}56715", // bullet
            "311299 - 56715",
            "311299+56715",
            "3\u{fe0f}\u{20e3}1\u{fe0f}\u{20e3}1\u{fe0f}\u{20e3}2\u{fe0f}\u{20e3}9\u{fe0f}\u{20e3}9\u{fe0f}\u{20e3}5\u{fe0f}\u{20e3}6\u{fe0f}\u{20e3}7\u{fe0f}\u{20e3}1\u{fe0f}\u{20e3}5\u{fe0f}\u{20e3}", // keycaps
            "3\u{332}1\u{332}1\u{332}2\u{332}9\u{332}9\u{332}5\u{332}6\u{332}7\u{332}1\u{332}5\u{332}", // underlined
            "３１１２９９\u{3000}５６７１５",
            "ref:30.10.82-999 39",
        ] {
            assert!(contains_national_id_like(text), "{text:?}");
        }
        // Anything else ends the run.
        for text in [
            "311299/56715",
            "311299:56715",
            "311299,56715",
            "311299a56715",
        ] {
            assert!(!contains_national_id_like(text), "{text:?}");
        }
    }

    // Percent-escapes (either case, partial, of separators, of UTF-8, twice) and HTML numeric
    // character references are decoded before scanning again.
    #[test]
    fn uri_encodings_are_decoded() {
        for text in [
            "https://ehr.example/p/%33%31%31%32%39%39%35%36%37%31%35",
            "https://ehr.example/p/311299%35%36%37%31%35",
            "https://ehr.example/p/%331%3129956715",
            "https://ehr.example/p?fnr=311299%2056715",
            "https://ehr.example/p?fnr=311299%2d56715",
            "https://ehr.example/p?fnr=311299%2D56715",
            "https://ehr.example/p?fnr=31%2E12%2e99%2E56715",
            "https://ehr.example/p?fnr=311299+56715",
            "https://ehr.example/p?fnr=311299%C2%A056715",
            "https://ehr.example/p/%EF%BC%93%EF%BC%91%EF%BC%91%EF%BC%92%EF%BC%99%EF%BC%99567%EF%BC%915",
            "https://ehr.example/p/%2533%2531%2531%2532%2539%2539%2535%2536%2537%2531%2535",
            "&#51;&#49;&#49;&#50;&#57;&#57;&#53;&#54;&#55;&#49;&#53;",
            "&#x33;&#X31;1299567&#x31;5",
            "&#51&#49;129956715",
        ] {
            assert!(contains_national_id_like(text), "{text:?}");
        }
        assert!(!contains_national_id_like(
            "https://ehr.example/p/%33%31%31%32%39%39%35%36%37%31%36"
        ));
        assert!(!contains_national_id_like(
            "https://ehr.example/p/100%25done%zz%"
        ));
        assert!(!contains_national_id_like("&#;&#x;&#99999999999;"));
    }

    // Ordinary dates, times, phone numbers and references pass.
    #[test]
    fn ordinary_numbers_pass() {
        for text in [
            "innlagt 31.12.2025, utskrevet 02.01.2026",
            "tlf. +47 22 33 44 55",
            "epikrise-2026-0001",
            "https://ehr.hospital.example/records/epikrise-2026-0001?v=12",
            "pasientjournalloven § 19",
            "ordre 12345678901",
            "kl. 14.30, rom 312",
        ] {
            assert!(!contains_national_id_like(text), "{text:?}");
        }
        // Joined into one run of digits, each of these would hold a valid number; taken as whole
        // groups, none does.
        for text in [
            "python-1764591252221-3181",
            "01.12.2025 04.30",
            "lab-2026-03-17-00107",
        ] {
            let joined: String = text.chars().filter(char::is_ascii_digit).collect();
            assert!(contains_national_id_like(&joined), "{joined}");
            assert!(!contains_national_id_like(text), "{text:?}");
        }
    }

    // Whole groups with 11 digits in all are found wherever they stand in a chain; 11 digits
    // inside one longer group too.
    #[test]
    fn whole_groups_of_eleven_digits_are_found() {
        for text in [
            "2026 311299 56715",
            "311299 56715 2026",
            "12-31-12-99-567-15-7",
            "31 1 2 9 9 5 6 7 1 5",
            "0031129956715000 42",
        ] {
            assert!(contains_national_id_like(text), "{text:?}");
        }
    }

    // The table of Nd zeros is sorted, each run is ten numeric code points, and a run's
    // neighbours below are not part of it.
    #[test]
    fn the_decimal_digit_table_is_consistent() {
        assert!(ND_ZEROS.windows(2).all(|pair| pair[1] >= pair[0] + 10));
        for zero in ND_ZEROS {
            for value in 0..10 {
                let character = char::from_u32(zero + value).unwrap();
                assert!(character.is_numeric(), "U+{:04X}", zero + value);
                assert_eq!(
                    digits_of(character).map(|digits| digits.as_slice().to_vec()),
                    Some(vec![value as u8])
                );
            }
        }
        assert!(
            COMPATIBILITY_DIGITS
                .windows(2)
                .all(|pair| pair[0].1 < pair[1].0)
        );
        for (first, last, _) in COMPATIBILITY_DIGITS {
            for code in first..=last {
                assert!(char::from_u32(code).unwrap().is_numeric(), "U+{code:04X}");
            }
        }
        assert_eq!(digits_of('⑳').unwrap().as_slice(), &[2, 0]);
        assert_eq!(digits_of('㊿').unwrap().as_slice(), &[5, 0]);
        assert_eq!(digits_of('a'), None);
        assert_eq!(digits_of('Ⅻ'), None);
    }

    // Binary fields: any 11 ASCII digits in a row, or the text rule on their UTF-8 reading.
    #[test]
    fn binary_fields_refuse_digit_runs() {
        assert!(contains_ascii_digit_run(b"\x0012345678901\xff"));
        assert!(!contains_ascii_digit_run(b"1234567890\x001234567890"));
        assert!(bytes_contain_national_id_like(b"31129956716xx")); // a run, valid or not
        assert!(bytes_contain_national_id_like("٣١١٢٩٩٥٦٧١٥".as_bytes()));
        assert!(bytes_contain_national_id_like(b"311299%35%36%37%31%35"));
        assert!(bytes_contain_national_id_like(b"311299 56715"));
        assert!(!bytes_contain_national_id_like(&[0x11; 32]));
        assert!(!bytes_contain_national_id_like(&[0x33; 10]));
        // The whole-body rule: plain digits with valid check digits only.
        assert!(contains_plain_national_id(b"\x0a\x0b31129956715\x12"));
        assert!(!contains_plain_national_id(b"\x0a\x0b31129956716\x12"));
        assert!(!contains_plain_national_id(b"311299 56715"));
    }
}
