//! Random strings from the OS CSPRNG, in the alphabets tokens and client ids use.

/// GitHub's base62 alphabet, in the order its checksums encode with.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from `alphabet`, read from the OS CSPRNG.
///
/// Bytes at or above the largest multiple of the alphabet's size are rejected, so every
/// character is equally likely.
pub fn string_from(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 128];
    while out.len() < len {
        getrandom::fill(&mut pool).expect("the OS random source is unavailable");
        for &byte in &pool {
            if usize::from(byte) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    out
}

/// `len` base62 characters from the OS CSPRNG.
pub fn base62(len: usize) -> String {
    string_from(BASE62, len)
}

/// `len` lowercase hex characters from the OS CSPRNG.
pub fn hex(len: usize) -> String {
    string_from(b"0123456789abcdef", len)
}

/// `N` raw bytes from the OS CSPRNG.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random source is unavailable");
    out
}

/// A number drawn uniformly from [0, 1), from the OS CSPRNG: the jitter the schedules take.
pub fn fraction() -> f64 {
    // The top 53 bits: every value a multiple of 2^-53, as many as an f64 mantissa holds.
    (u64::from_le_bytes(bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_only_from_the_alphabet_and_covers_it() {
        let s = base62(20_000);
        assert_eq!(s.len(), 20_000);
        assert!(s.bytes().all(|b| BASE62.contains(&b)));
        for c in BASE62 {
            assert!(s.as_bytes().contains(c), "{} never drawn", char::from(*c));
        }
    }

    #[test]
    fn fractions_fall_in_the_unit_interval_and_spread() {
        let draws: Vec<f64> = (0..1000).map(|_| fraction()).collect();
        assert!(draws.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(draws.iter().any(|f| *f < 0.1) && draws.iter().any(|f| *f > 0.9));
    }

    #[test]
    fn two_draws_differ() {
        assert_ne!(base62(30), base62(30));
    }
}
