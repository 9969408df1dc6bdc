//! Which id_token signing keys are published, which one signs, and which may be dropped: one
//! rule for the certs endpoints, the signer, rotation and the sweep.
//!
//! A key signs from its `signs_from` until a higher generation's `signs_from` comes. It is
//! published while it may still sign (pending or current) and, once superseded, until every
//! id_token it signed has expired (`token_secs` after it stopped signing, plus verifiers'
//! clock-skew allowance). A key that is neither published nor current may be dropped.

use refreshd_core::Timestamp;

use crate::SigningKey;

/// Verifiers accept an id_token this long past its `exp` (google-auth-library's default
/// skew): a superseded key stays published that much longer.
pub const VERIFIER_SKEW_SECS: i64 = 300;

/// Where a key stands at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published ahead of signing, so verifiers' cached key sets hold it before it signs.
    Pending,
    /// The key that signs now (also published).
    Current,
    /// No longer signing, still published while id_tokens it signed may be valid.
    Retiring,
    /// Neither signing nor published: may be dropped.
    Retired,
}

impl KeyState {
    pub fn published(self) -> bool {
        self != Self::Retired
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Current => "current",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }
}

/// When `key` stops signing: the earliest `signs_from` of a higher generation (`None` while
/// nothing supersedes it).
fn stops_at(key: &SigningKey, keys: &[SigningKey]) -> Option<Timestamp> {
    keys.iter()
        .filter(|k| k.generation > key.generation)
        .map(|k| k.signs_from)
        .min()
}

/// The state of `key` among `keys` at `now`, id_tokens living `token_secs`.
pub fn key_state(
    key: &SigningKey,
    keys: &[SigningKey],
    now: Timestamp,
    token_secs: i64,
) -> KeyState {
    if current_key(keys, now).is_some_and(|c| c.generation == key.generation) {
        return KeyState::Current;
    }
    let stops = stops_at(key, keys);
    // It never signs when a higher generation starts before it does (timestamps are seconds:
    // one starting in the same second may have let it sign within that second).
    let ever_signs = stops.is_none_or(|stops| stops >= key.signs_from);
    if key.signs_from > now {
        return if ever_signs {
            KeyState::Pending
        } else {
            KeyState::Retired
        };
    }
    match stops {
        Some(stops)
            if ever_signs && now.secs() < stops.secs() + token_secs + VERIFIER_SKEW_SECS =>
        {
            KeyState::Retiring
        }
        _ => KeyState::Retired,
    }
}

/// The key that signs at `now`: the highest generation whose `signs_from` has come.
pub fn current_key(keys: &[SigningKey], now: Timestamp) -> Option<&SigningKey> {
    keys.iter()
        .filter(|k| k.signs_from <= now)
        .max_by_key(|k| k.generation)
}

/// When a key added to `keys` at `now` starts signing: after verifiers' cached key sets
/// (`max_age_secs`, plus clock skew between the host that rotates and the servers) have
/// expired, so every verifier holds it before it signs; at once when `immediately`, or when
/// no key signs yet (nothing would sign meanwhile).
pub fn signs_from(
    keys: &[SigningKey],
    now: Timestamp,
    max_age_secs: i64,
    immediately: bool,
) -> Timestamp {
    if immediately || current_key(keys, now).is_none() {
        now
    } else {
        now.plus_secs(max_age_secs + VERIFIER_SKEW_SECS)
    }
}

/// The keys to publish at `now`, in the order given.
pub fn published_keys(keys: &[SigningKey], now: Timestamp, token_secs: i64) -> Vec<&SigningKey> {
    keys.iter()
        .filter(|k| key_state(k, keys, now, token_secs).published())
        .collect()
}

/// The generation below which every key may be dropped at `now` (for
/// `drop_signing_keys_before`); `None` when none may. A retired key above a kept one stays
/// until the kept one goes (it is not published meanwhile).
pub fn drop_before(keys: &[SigningKey], now: Timestamp, token_secs: i64) -> Option<i64> {
    let lowest_kept = keys
        .iter()
        .filter(|k| key_state(k, keys, now, token_secs) != KeyState::Retired)
        .map(|k| k.generation)
        .min()?;
    keys.iter()
        .any(|k| k.generation < lowest_kept)
        .then_some(lowest_kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    fn key(generation: i64, signs_from: i64) -> SigningKey {
        SigningKey {
            generation,
            kid: format!("kid{generation}"),
            sealed_private_key: refreshd_core::SealedKey::from_stored(Vec::new()),
            cert_pem: String::new(),
            jwk_n: String::new(),
            jwk_e: String::new(),
            created_at: Timestamp(0),
            signs_from: Timestamp(signs_from),
        }
    }

    fn states(keys: &[SigningKey], now: i64) -> Vec<KeyState> {
        keys.iter()
            .map(|k| key_state(k, keys, Timestamp(now), HOUR))
            .collect()
    }

    use KeyState::*;

    #[test]
    fn a_new_key_signs_once_cached_key_sets_have_expired_or_at_once_when_none_signs() {
        let now = Timestamp(10 * HOUR);
        let signing = [key(1, 0)];
        assert_eq!(
            signs_from(&signing, now, HOUR, false),
            Timestamp(11 * HOUR + VERIFIER_SKEW_SECS)
        );
        assert_eq!(signs_from(&signing, now, HOUR, true), now);
        assert_eq!(signs_from(&[], now, HOUR, false), now, "no key yet");
        let pending_only = [key(1, 12 * HOUR)];
        assert_eq!(signs_from(&pending_only, now, HOUR, false), now);
    }

    #[test]
    fn a_single_key_is_current_once_it_signs() {
        let keys = [key(1, 100)];
        assert_eq!(states(&keys, 100), [Current]);
        assert_eq!(states(&keys, 99), [Pending]);
        assert_eq!(drop_before(&keys, Timestamp(10_000), HOUR), None);
    }

    #[test]
    fn a_rotated_key_is_published_before_it_signs_and_its_predecessor_until_its_tokens_expire() {
        // Rotated at 1000 with certs max-age 3600: the new key signs from 4600.
        let keys = [key(1, 0), key(2, 4600)];
        assert_eq!(states(&keys, 1000), [Current, Pending]);
        assert_eq!(current_key(&keys, Timestamp(4599)).unwrap().generation, 1);
        assert_eq!(states(&keys, 4600), [Retiring, Current]);
        let last = 4600 + HOUR + VERIFIER_SKEW_SECS;
        assert_eq!(states(&keys, last - 1), [Retiring, Current]);
        assert_eq!(states(&keys, last), [Retired, Current]);
        assert_eq!(published_keys(&keys, Timestamp(last - 1), HOUR).len(), 2);
        assert_eq!(published_keys(&keys, Timestamp(last), HOUR)[0].kid, "kid2");
        assert_eq!(drop_before(&keys, Timestamp(last - 1), HOUR), None);
        assert_eq!(drop_before(&keys, Timestamp(last), HOUR), Some(2));
    }

    #[test]
    fn a_rotation_now_signs_at_once() {
        let keys = [key(1, 0), key(2, 500)];
        assert_eq!(states(&keys, 500), [Retiring, Current]);
        assert_eq!(current_key(&keys, Timestamp(500)).unwrap().generation, 2);
    }

    #[test]
    fn a_pending_key_overtaken_by_an_immediate_rotation_never_signs_and_is_not_published() {
        // Generation 2 would sign from 5000; generation 3 was rotated in with --now at 2000.
        let keys = [key(1, 0), key(2, 5000), key(3, 2000)];
        assert_eq!(states(&keys, 2000), [Retiring, Retired, Current]);
        assert_eq!(states(&keys, 4000), [Retiring, Retired, Current]);
        let gone = 2000 + HOUR + VERIFIER_SKEW_SECS;
        assert_eq!(states(&keys, gone), [Retired, Retired, Current]);
        // Generation 2 stays until generation 1 goes, then both go at once.
        assert_eq!(drop_before(&keys, Timestamp(gone - 1), HOUR), None);
        assert_eq!(drop_before(&keys, Timestamp(gone), HOUR), Some(3));
    }

    #[test]
    fn a_key_superseded_in_the_second_it_began_signing_may_have_signed() {
        let keys = [key(1, 500), key(2, 500)];
        assert_eq!(states(&keys, 500), [Retiring, Current]);
        assert_eq!(
            states(&keys, 500 + HOUR + VERIFIER_SKEW_SECS),
            [Retired, Current]
        );
    }

    #[test]
    fn the_current_key_is_never_dropped() {
        let keys = [key(1, 0), key(2, 100), key(3, 200)];
        let later = 1_000_000;
        assert_eq!(states(&keys, later), [Retired, Retired, Current]);
        assert_eq!(drop_before(&keys, Timestamp(later), HOUR), Some(3));
    }
}
