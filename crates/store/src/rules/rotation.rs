//! What a refresh token's rotation that matched nothing comes to: refused, replayed, or the
//! family revoked as reused. Both adapters read the same two rows and apply this verdict.

use refreshd_core::rotation::{ReuseVerdict, RotatedPair, judge_reuse};
use refreshd_core::{AppId, FamilyId, Timestamp};

use super::PairState;
use crate::Grant;

/// The presented refresh token's pair and family, as read after its rotation failed.
#[derive(Clone, Debug)]
pub struct PresentedPair {
    pub family_id: FamilyId,
    /// The family's grant: whose it is and for which app.
    pub grant: Grant,
    pub family_revoked: bool,
    pub state: PairState,
    pub rotated_at: Timestamp,
}

impl PresentedPair {
    /// Whether presenting this token to `app_id` may be reuse, so its successor must be read:
    /// only a rotated token of the app's live family. An expired, revoked or foreign one is
    /// just refused.
    pub fn may_be_reuse(&self, app_id: AppId) -> bool {
        self.grant.app_id == app_id && !self.family_revoked && self.state == PairState::Rotated
    }
}

/// The pair that replaced the presented one, as read (and, where that means something,
/// locked) in the same transaction.
#[derive(Clone, Debug)]
pub struct SuccessorPair {
    pub state: PairState,
    /// The successor's answer sealed under the presented token, while it is kept.
    pub sealed: Option<Vec<u8>>,
}

/// What the adapter does after a failed rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailedRotation {
    /// Refuse the token; nothing changes.
    Reject,
    /// Answer again with the successor's sealed answer, for the family's grant; nothing
    /// changes.
    Replay { grant: Grant, sealed: Vec<u8> },
    /// Reuse: revoke the presented token's whole family.
    RevokeFamily { family_id: FamilyId },
}

/// The verdict on presenting a refresh token to `app_id` whose rotation matched nothing.
/// `presented` is `None` for an unknown token; `successor` is `None` when it was not read (see
/// `PresentedPair::may_be_reuse`) or no longer exists.
pub fn judge_failed_rotation(
    presented: Option<&PresentedPair>,
    app_id: AppId,
    successor: Option<SuccessorPair>,
    now: Timestamp,
    grace_window_secs: i64,
) -> FailedRotation {
    let Some(presented) = presented.filter(|p| p.may_be_reuse(app_id)) else {
        return FailedRotation::Reject;
    };
    let successor = successor.unwrap_or(SuccessorPair {
        state: PairState::Revoked,
        sealed: None,
    });
    let pair = RotatedPair {
        rotated_at: presented.rotated_at,
        successor_is_live: successor.state == PairState::Live,
        successor_sealed: successor.sealed.is_some(),
    };
    match (judge_reuse(pair, now, grace_window_secs), successor.sealed) {
        (ReuseVerdict::Replay, Some(sealed)) => FailedRotation::Replay {
            grant: presented.grant.clone(),
            sealed,
        },
        _ => FailedRotation::RevokeFamily {
            family_id: presented.family_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use refreshd_core::{Scopes, UserId};

    use super::*;

    const APP: AppId = AppId(7);

    fn rotated() -> PresentedPair {
        PresentedPair {
            family_id: FamilyId(3),
            grant: Grant {
                app_id: APP,
                user_id: UserId(5),
                scopes: Scopes::parse("repo"),
            },
            family_revoked: false,
            state: PairState::Rotated,
            rotated_at: Timestamp(1000),
        }
    }

    fn live_sealed() -> Option<SuccessorPair> {
        Some(SuccessorPair {
            state: PairState::Live,
            sealed: Some(vec![1]),
        })
    }

    fn judge(
        presented: Option<&PresentedPair>,
        successor: Option<SuccessorPair>,
    ) -> FailedRotation {
        judge_failed_rotation(presented, APP, successor, Timestamp(1005), 10)
    }

    #[test]
    fn unknown_foreign_revoked_or_unrotated_tokens_are_rejected() {
        assert_eq!(judge(None, live_sealed()), FailedRotation::Reject);
        let mut foreign = rotated();
        foreign.grant.app_id = AppId(8);
        let revoked = PresentedPair {
            family_revoked: true,
            ..rotated()
        };
        let live = PresentedPair {
            state: PairState::Live,
            ..rotated()
        };
        for p in [foreign, revoked, live] {
            assert!(!p.may_be_reuse(APP));
            assert_eq!(judge(Some(&p), live_sealed()), FailedRotation::Reject);
        }
    }

    #[test]
    fn the_previous_token_in_the_window_replays_its_sealed_successor() {
        assert_eq!(
            judge(Some(&rotated()), live_sealed()),
            FailedRotation::Replay {
                grant: rotated().grant,
                sealed: vec![1]
            }
        );
    }

    #[test]
    fn anything_else_revokes_the_family() {
        let rotated_successor = Some(SuccessorPair {
            state: PairState::Rotated,
            sealed: Some(vec![1]),
        });
        let unsealed = Some(SuccessorPair {
            state: PairState::Live,
            sealed: None,
        });
        for successor in [rotated_successor, unsealed, None] {
            assert_eq!(
                judge(Some(&rotated()), successor),
                FailedRotation::RevokeFamily {
                    family_id: FamilyId(3)
                }
            );
        }
        let late = judge_failed_rotation(Some(&rotated()), APP, live_sealed(), Timestamp(1011), 10);
        assert_eq!(
            late,
            FailedRotation::RevokeFamily {
                family_id: FamilyId(3)
            }
        );
    }
}
