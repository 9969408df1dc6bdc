//! Where a token pair is in its life.

/// A token pair's state. Stored as a small integer (`code`), which the adapters' SQL spells
/// out as a literal rather than a bound parameter: only then can the partial index of live
/// pairs (`WHERE state = 0`) serve a query. The migrations check that no other is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairState {
    /// Its tokens work (until they expire).
    Live,
    /// Its refresh token was exchanged for a successor: presenting it again is reuse.
    Rotated,
    /// Revoked on its own (its access token was revoked).
    Revoked,
}

impl PairState {
    /// The code the database keeps.
    pub const fn code(self) -> i16 {
        match self {
            PairState::Live => 0,
            PairState::Rotated => 1,
            PairState::Revoked => 2,
        }
    }

    /// The state a stored code stands for; `None` for a code no state has.
    pub fn from_code(code: i64) -> Option<Self> {
        [PairState::Live, PairState::Rotated, PairState::Revoked]
            .into_iter()
            .find(|state| i64::from(state.code()) == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for state in [PairState::Live, PairState::Rotated, PairState::Revoked] {
            assert_eq!(PairState::from_code(state.code().into()), Some(state));
        }
        assert_eq!(PairState::from_code(3), None);
    }
}
