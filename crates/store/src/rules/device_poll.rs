//! What a poll of a device code answers (RFC 8628 §3.5), from the code's stored row.

use refreshd_core::Timestamp;

/// Where a device authorization is in its life. Stored as a small integer (`code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Waiting for the user to approve or deny it.
    Pending,
    /// Approved; the next poll gets the token.
    Approved,
    Denied,
    /// Its token was handed out: the code is spent.
    Redeemed,
}

impl DeviceState {
    /// The code the database keeps.
    pub const fn code(self) -> i16 {
        match self {
            DeviceState::Pending => 0,
            DeviceState::Approved => 1,
            DeviceState::Denied => 2,
            DeviceState::Redeemed => 3,
        }
    }

    /// The state a stored code stands for; `None` for a code no state has.
    pub fn from_code(code: i64) -> Option<Self> {
        [
            DeviceState::Pending,
            DeviceState::Approved,
            DeviceState::Denied,
            DeviceState::Redeemed,
        ]
        .into_iter()
        .find(|state| i64::from(state.code()) == code)
    }
}

/// A poll's verdict; the adapter stores what it implies in the poll's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollVerdict {
    /// Spent already: answered as an unknown code.
    Spent,
    Expired,
    Denied,
    /// Still pending; record `now` as the last poll.
    Pending,
    /// Polled before the interval had passed: store the new interval and `now` as the last poll.
    SlowDown {
        interval_secs: i64,
    },
    /// Approved: mark it redeemed and issue the token.
    Issue,
}

/// How much longer the interval gets with each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i64 = 5;

/// The verdict for a poll at `now`. Only pending codes are rate limited: a decided or expired
/// code is answered at once, whatever the rate (clients that wait a fixed time after
/// `slow_down` would otherwise never see the decision).
pub fn judge_poll(
    state: DeviceState,
    expires_at: Timestamp,
    interval_secs: i64,
    last_polled_at: Option<Timestamp>,
    now: Timestamp,
) -> PollVerdict {
    if state == DeviceState::Redeemed {
        return PollVerdict::Spent;
    }
    if now >= expires_at {
        return PollVerdict::Expired;
    }
    match state {
        DeviceState::Denied => PollVerdict::Denied,
        DeviceState::Approved => PollVerdict::Issue,
        _ => match last_polled_at {
            Some(last) if now < last.plus_secs(interval_secs) => PollVerdict::SlowDown {
                interval_secs: interval_secs + SLOW_DOWN_STEP_SECS,
            },
            _ => PollVerdict::Pending,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000);
    const EXPIRES: Timestamp = Timestamp(1_900);

    #[test]
    fn codes_round_trip() {
        for state in [
            DeviceState::Pending,
            DeviceState::Approved,
            DeviceState::Denied,
            DeviceState::Redeemed,
        ] {
            assert_eq!(DeviceState::from_code(state.code().into()), Some(state));
        }
        assert_eq!(DeviceState::from_code(4), None);
    }

    #[test]
    fn pending_polls_are_rate_limited_by_the_interval() {
        use DeviceState::Pending;
        assert_eq!(
            judge_poll(Pending, EXPIRES, 5, None, NOW),
            PollVerdict::Pending
        );
        assert_eq!(
            judge_poll(Pending, EXPIRES, 5, Some(NOW.plus_secs(-5)), NOW),
            PollVerdict::Pending
        );
        assert_eq!(
            judge_poll(Pending, EXPIRES, 5, Some(NOW.plus_secs(-4)), NOW),
            PollVerdict::SlowDown { interval_secs: 10 }
        );
        assert_eq!(
            judge_poll(Pending, EXPIRES, 10, Some(NOW.plus_secs(-9)), NOW),
            PollVerdict::SlowDown { interval_secs: 15 }
        );
    }

    #[test]
    fn decided_expired_and_spent_codes_answer_whatever_the_rate() {
        let last = Some(NOW);
        assert_eq!(
            judge_poll(DeviceState::Approved, EXPIRES, 5, last, NOW),
            PollVerdict::Issue
        );
        assert_eq!(
            judge_poll(DeviceState::Denied, EXPIRES, 5, last, NOW),
            PollVerdict::Denied
        );
        for state in [
            DeviceState::Pending,
            DeviceState::Approved,
            DeviceState::Denied,
        ] {
            assert_eq!(
                judge_poll(state, EXPIRES, 5, last, EXPIRES),
                PollVerdict::Expired
            );
        }
        assert_eq!(
            judge_poll(DeviceState::Redeemed, EXPIRES, 5, last, NOW),
            PollVerdict::Spent
        );
        assert_eq!(
            judge_poll(DeviceState::Redeemed, EXPIRES, 5, last, EXPIRES),
            PollVerdict::Spent
        );
    }
}
