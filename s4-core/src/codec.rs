//! Base64 path codec shared by every route that carries keys, prefixes or local paths.
//!
//! Keys travel as Base64 of their UTF-8 bytes. Both the standard and the URL-safe
//! alphabets are accepted, padding is optional, trailing bits are ignored, and the
//! decoded bytes must be UTF-8. The result is used verbatim (no second
//! percent-decoding, no Unicode normalization).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Decoder for the standard alphabet, padding optional, lenient trailing bits.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why a Base64 parameter was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not Base64 in either alphabet.
    NotBase64,
    /// Base64, but the bytes are not UTF-8.
    NotUtf8,
}

/// Decodes a Base64 (standard or URL-safe, padding optional) parameter into text.
///
/// # Errors
/// [`DecodeError`] when the text is not Base64 or does not decode to UTF-8.
pub fn decode_b64_text(input: &str) -> Result<String, DecodeError> {
    let trimmed = input.trim_end_matches('=');
    let pads = input.len() - trimmed.len();
    if pads > 2 {
        return Err(DecodeError::NotBase64);
    }
    let mut normalized = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        match c {
            '-' => normalized.push('+'),
            '_' => normalized.push('/'),
            'A'..='Z' | 'a'..='z' | '0'..='9' | '+' | '/' => normalized.push(c),
            _ => return Err(DecodeError::NotBase64),
        }
    }
    if normalized.len() % 4 == 1 {
        return Err(DecodeError::NotBase64);
    }
    let bytes = LENIENT
        .decode(normalized.as_bytes())
        .map_err(|_| DecodeError::NotBase64)?;
    String::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)
}

/// Encodes text as URL-safe Base64 without padding (what clients should send).
pub fn encode_b64_text(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        assert_eq!(
            decode_b64_text("bW9kZWxzL2xsYW1hLTItN2IvY29uZmlnLmpzb24").as_deref(),
            Ok("models/llama-2-7b/config.json")
        );
        assert_eq!(
            encode_b64_text("models/llama-2-7b/config.json"),
            "bW9kZWxzL2xsYW1hLTItN2IvY29uZmlnLmpzb24"
        );
    }

    #[test]
    fn both_alphabets_and_padding() {
        let text = "a?b>c~ü😀";
        let std = base64::engine::general_purpose::STANDARD.encode(text);
        let url = encode_b64_text(text);
        assert_eq!(decode_b64_text(&std).as_deref(), Ok(text));
        assert_eq!(decode_b64_text(&url).as_deref(), Ok(text));
        assert_eq!(decode_b64_text("YQ==").as_deref(), Ok("a"));
        assert_eq!(decode_b64_text("YQ").as_deref(), Ok("a"));
        // Non-zero trailing bits are tolerated.
        assert_eq!(decode_b64_text("YR").as_deref(), Ok("a"));
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!(decode_b64_text("a"), Err(DecodeError::NotBase64));
        assert_eq!(decode_b64_text("YQ==="), Err(DecodeError::NotBase64));
        assert_eq!(decode_b64_text("Y=Q"), Err(DecodeError::NotBase64));
        assert_eq!(decode_b64_text("a.b"), Err(DecodeError::NotBase64));
        assert_eq!(decode_b64_text("%2F"), Err(DecodeError::NotBase64));
        // 0xff is not UTF-8.
        assert_eq!(decode_b64_text("_w"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode_b64_text("").as_deref(), Ok(""));
    }
}

/// Property tests: arbitrary parameters never panic; encoding round-trips in both
/// alphabets, padded or not.
#[cfg(test)]
mod proptests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_decodes_or_errs(input in any::<String>()) {
            let _ = decode_b64_text(&input);
        }

        /// Near-Base64 text (both alphabets, stray padding, percent escapes, dots).
        #[test]
        fn base64ish_text_decodes_or_errs(input in "[A-Za-z0-9+/_=%.-]{0,40}") {
            if let Ok(text) = decode_b64_text(&input) {
                // Whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(decode_b64_text(&encode_b64_text(&text)), Ok(text));
            }
        }

        #[test]
        fn round_trips(text in any::<String>()) {
            let encoded = encode_b64_text(&text);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(decode_b64_text(&encoded), Ok(text.clone()));
            for other in [STANDARD.encode(&text), STANDARD_NO_PAD.encode(&text), URL_SAFE.encode(&text)] {
                prop_assert_eq!(decode_b64_text(&other), Ok(text.clone()));
            }
        }

        #[test]
        fn arbitrary_bytes_are_utf8_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let encoded = STANDARD.encode(&bytes);
            match String::from_utf8(bytes) {
                Ok(text) => prop_assert_eq!(decode_b64_text(&encoded), Ok(text)),
                Err(_) => prop_assert_eq!(decode_b64_text(&encoded), Err(DecodeError::NotUtf8)),
            }
        }
    }
}
