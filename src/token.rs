//! Random tokens and hex: the one place that draws random bytes for ids and secrets, and the one hex
//! encoder.
//!
//! Session ids, CSRF tokens, login bindings, request ids and freshly generated signing keys all come
//! from here, so the randomness source (the OS-seeded `rand::rng()`) and the encodings are decided once.
//! It must not depend on anything else in the crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// `N` random bytes.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `N` random bytes as unpadded base64url: safe in cookies, URLs and headers as they are.
pub(crate) fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// Lower-case hex, two digits per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_asked_size_and_differ() {
        assert_eq!(random_token::<32>().len(), 43);
        assert_eq!(random_token::<16>().len(), 22);
        assert_ne!(random_token::<32>(), random_token::<32>());
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }
}
