//! The device flow's (RFC 8628) two codes: the user code a person types on the approval page
//! and the device code the device polls with. Both reach storage only as digests.

use crate::TokenDigest;
use crate::random;

/// RFC 8628 §6.1's base-20 alphabet: no vowels (no words) and no look-alikes (0/O, 1/I).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code, not counting the dash.
const USER_CODE_LEN: usize = 8;

/// A user code, GitHub's `XXXX-XXXX`. Held in its normal form: upper case, no dash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A new code of 8 characters from `USER_CODE_ALPHABET` (about 34.5 bits).
    pub fn generate() -> Self {
        Self(random::string_from(USER_CODE_ALPHABET, USER_CODE_LEN))
    }

    /// A code as a person typed it: any case, with or without the dash, spaces ignored.
    /// `None` unless eight characters of the alphabet remain.
    pub fn normalize(typed: &str) -> Option<Self> {
        let code: String = typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// The code as shown to the person: `WDJB-MJHT`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }

    /// The digest of the normal form, under which storage keeps the code.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(..)")
    }
}

/// A new device code: 40 lowercase hex characters (20 random bytes), as GitHub's look.
pub fn generate_device_code() -> String {
    random::hex(40)
}

/// The digest under which storage keeps a device code as the device presents it.
pub fn device_code_digest(device_code: &str) -> TokenDigest {
    TokenDigest::of(device_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_user_codes_are_githubs_shape() {
        for _ in 0..200 {
            let code = UserCode::generate();
            let shown = code.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert!(
                shown
                    .bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| USER_CODE_ALPHABET.contains(&b)),
                "{shown}"
            );
            assert_eq!(UserCode::normalize(&shown), Some(code));
        }
        assert_ne!(UserCode::generate(), UserCode::generate());
    }

    #[test]
    fn normalizes_case_dash_and_spaces_to_one_digest() {
        let want = TokenDigest::of("WDJBMJHT");
        for typed in [
            "WDJB-MJHT",
            "wdjb-mjht",
            "wdjbmjht",
            " WdJb MjHt ",
            "WDJBMJHT",
        ] {
            let code = UserCode::normalize(typed).unwrap_or_else(|| panic!("{typed:?}"));
            assert_eq!(code.digest(), want, "{typed:?}");
            assert_eq!(code.display(), "WDJB-MJHT");
        }
    }

    #[test]
    fn refuses_other_characters_and_lengths() {
        for typed in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTB",
            "WDJB-MJH0",
            "AEIO-UBCD",
            "WDJB_MJHT",
            "WDJB-MJHÉ",
            "1234-5678",
        ] {
            assert_eq!(UserCode::normalize(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn device_codes_are_40_hex_and_stored_as_their_digest() {
        let code = generate_device_code();
        assert_eq!(code.len(), 40);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(code, generate_device_code());
        assert_eq!(device_code_digest(&code), TokenDigest::of(&code));
    }

    #[test]
    fn debug_hides_the_code() {
        assert_eq!(format!("{:?}", UserCode::generate()), "UserCode(..)");
    }
}
