//! The rules for a refresh token that has already been used (RFC 9700 §4.14.2).

use crate::clock::Timestamp;

/// What storage knows about a pair whose refresh token was already rotated.
#[derive(Clone, Copy, Debug)]
pub struct RotatedPair {
    pub rotated_at: Timestamp,
    /// Whether the pair that replaced it is still the family's live pair.
    pub successor_is_live: bool,
    /// Whether an encrypted copy of the successor's answer is still kept.
    pub successor_sealed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReuseVerdict {
    /// The immediately previous token, inside the grace window: answer the same successor.
    Replay,
    /// Anything else is reuse: revoke the whole family.
    RevokeFamily,
}

/// Only the immediately previous refresh token, within the grace window, is replayed; an older
/// token, or any token after the window, means the family may be stolen.
pub fn judge_reuse(pair: RotatedPair, now: Timestamp, grace_window_secs: i64) -> ReuseVerdict {
    let in_window =
        now.secs() - pair.rotated_at.secs() <= grace_window_secs && grace_window_secs > 0;
    if in_window && pair.successor_is_live && pair.successor_sealed {
        ReuseVerdict::Replay
    } else {
        ReuseVerdict::RevokeFamily
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(successor_is_live: bool) -> RotatedPair {
        RotatedPair {
            rotated_at: Timestamp(1000),
            successor_is_live,
            successor_sealed: true,
        }
    }

    #[test]
    fn previous_token_inside_the_window_is_replayed() {
        assert_eq!(
            judge_reuse(pair(true), Timestamp(1000), 10),
            ReuseVerdict::Replay
        );
        assert_eq!(
            judge_reuse(pair(true), Timestamp(1010), 10),
            ReuseVerdict::Replay
        );
    }

    #[test]
    fn after_the_window_the_family_is_revoked() {
        assert_eq!(
            judge_reuse(pair(true), Timestamp(1011), 10),
            ReuseVerdict::RevokeFamily
        );
    }

    #[test]
    fn an_older_token_is_always_reuse() {
        assert_eq!(
            judge_reuse(pair(false), Timestamp(1000), 10),
            ReuseVerdict::RevokeFamily
        );
    }

    #[test]
    fn a_zero_window_disables_replay() {
        assert_eq!(
            judge_reuse(pair(true), Timestamp(1000), 0),
            ReuseVerdict::RevokeFamily
        );
    }

    #[test]
    fn without_a_sealed_answer_there_is_nothing_to_replay() {
        let p = RotatedPair {
            successor_sealed: false,
            ..pair(true)
        };
        assert_eq!(
            judge_reuse(p, Timestamp(1000), 10),
            ReuseVerdict::RevokeFamily
        );
    }
}
