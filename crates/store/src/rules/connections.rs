//! The rules of keeping a connection fresh, as plain functions: when the refresher may take one
//! (`is_due`, which `Connections::claim_due` spells in SQL), when it next looks at one
//! (`RefreshSchedule`), how long a failing one waits (`Backoff`), what an upstream's refusal
//! comes to (`classify`), and what a failure writes (`after_failure`).
//!
//! Randomness comes in as `jitter`, a number in [0, 1) the caller draws
//! (`refreshd_core::random::fraction`), so every rule is deterministic under test.

use refreshd_core::{ConnectionStatus, Timestamp};

use crate::{Connection, ConnectionTokens, Failure};

/// Whether the refresher may claim `connection` at `now`: it has a next look and that time has
/// come, it is not broken, its backoff has passed, and nobody's claim on it lasts past `now`.
pub fn is_due(connection: &Connection, now: Timestamp) -> bool {
    let reached = |at: Option<Timestamp>| at.is_none_or(|at| at <= now);
    connection.next_refresh_at.is_some_and(|at| at <= now)
        && connection.status != ConnectionStatus::Broken
        && reached(connection.retry_after)
        && reached(connection.claimed_until)
}

/// The end of the claim that keeps `holder` from claiming a connection at `now`: another
/// holder's claim that lasts past `now`. `None`: `holder` may claim it (it is free, the claim
/// has run out, or it is `holder`'s own).
pub fn claim_in_the_way(
    claimed_by: Option<&[u8]>,
    claimed_until: Option<Timestamp>,
    holder: &[u8; 16],
    now: Timestamp,
) -> Option<Timestamp> {
    let until = claimed_until.filter(|until| *until > now)?;
    (claimed_by != Some(holder.as_slice())).then_some(until)
}

/// The soonest the refresher looks at a connection again after a refresh: an upstream that
/// answers tokens with hardly any life left is not called again at once, batch after batch.
pub const MIN_REFRESH_GAP_SECS: i64 = 2;

/// When the refresher looks at a connection again after its tokens were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshSchedule {
    /// How long before the access token expires it is refreshed.
    pub lead_secs: i64,
    /// The longest a connection goes unrefreshed, since an unused refresh token may expire.
    pub keepalive_secs: i64,
}

impl Default for RefreshSchedule {
    /// Ten minutes before expiry; at least every seven days.
    fn default() -> Self {
        Self {
            lead_secs: 600,
            keepalive_secs: 7 * 24 * 3600,
        }
    }
}

impl RefreshSchedule {
    /// The next look at a connection whose `tokens` were obtained at `now`; `None` when
    /// nothing can be refreshed (no refresh token). The earliest of: the lead time before the
    /// access token expires, the lead time before the refresh token expires, and the
    /// keepalive. A lead longer than half a token's remaining life is cut to that half, so a
    /// short-lived token is not refreshed again at once; never sooner than
    /// `MIN_REFRESH_GAP_SECS`. `jitter` moves each deadline earlier
    /// by up to a fifth of its lead (a tenth of the keepalive), so connections made together
    /// spread out; never later than promised.
    pub fn next_refresh_at(
        &self,
        tokens: &ConnectionTokens,
        now: Timestamp,
        jitter: f64,
    ) -> Option<Timestamp> {
        tokens.refresh.as_ref()?;
        let jitter = jitter.clamp(0.0, 1.0);
        let before_expiry = |expires_at: Timestamp| {
            let remaining = (expires_at.secs() - now.secs()).max(0);
            let lead = self.lead_secs.min(remaining / 2).max(0);
            Timestamp(expires_at.secs() - lead - share(lead, jitter / 5.0))
        };
        let keepalive =
            now.plus_secs(self.keepalive_secs - share(self.keepalive_secs, jitter / 10.0));
        let next = [tokens.access_expires_at, tokens.refresh_expires_at]
            .into_iter()
            .flatten()
            .map(before_expiry)
            .fold(keepalive, Timestamp::min);
        Some(next.max(now.plus_secs(MIN_REFRESH_GAP_SECS)))
    }
}

/// How long a connection whose refreshes keep failing for passing reasons waits before the
/// next attempt: doubling from `first_secs` up to `max_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first_secs: i64,
    pub max_secs: i64,
}

impl Default for Backoff {
    /// Thirty seconds, doubling up to an hour.
    fn default() -> Self {
        Self {
            first_secs: 30,
            max_secs: 3600,
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 for the first): `first_secs`
    /// doubled per earlier failure, at most `max_secs`, then placed by `jitter` in the upper
    /// half of that (so connections that failed together do not all return together, and
    /// none returns sooner than half the schedule). At least one second.
    pub fn delay_secs(&self, failures: i64, jitter: f64) -> i64 {
        let doublings = failures.clamp(1, 63) - 1;
        let full = 2i64
            .checked_pow(doublings as u32)
            .and_then(|factor| self.first_secs.max(1).checked_mul(factor))
            .map_or(self.max_secs, |d| d.min(self.max_secs))
            .max(1);
        (full - share(full / 2, jitter.clamp(0.0, 1.0))).max(1)
    }

    /// When the next attempt may be made after the `failures`-th failure in a row at `now`.
    pub fn retry_after(&self, failures: i64, now: Timestamp, jitter: f64) -> Timestamp {
        now.plus_secs(self.delay_secs(failures, jitter))
    }
}

/// `fraction` of `secs`, rounded down.
fn share(secs: i64, fraction: f64) -> i64 {
    (secs as f64 * fraction) as i64
}

/// A refresh attempt that did not bring new tokens, as the refresher saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedAttempt<'a> {
    /// The request never left (the connection could not be made): nothing was spent.
    NotSent,
    /// The upstream answered with this HTTP status and, if its body said one, this OAuth
    /// error code (GitHub answers `bad_refresh_token` with status 200).
    Answered { status: u16, error: Option<&'a str> },
    /// The request was sent and no answer came (a timeout, a reset): the upstream may have
    /// used the refresh token.
    NoAnswer,
}

/// What a failed attempt means for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The upstream refused the grant itself: the connection is broken until replaced.
    Refused,
    /// It may pass: back off (`Backoff`) and try again.
    Transient,
    /// Unknown outcome: the refresh token is not sent again blindly. Recorded as backing off
    /// until at least the broker's full hold (the longest upstream call plus its margin) has
    /// passed, as an unknown broker refresh holds its lease.
    Unknown,
}

/// The OAuth errors by which an upstream says the grant is gone: GitHub's and RFC 6749's.
pub const REFUSING_ERRORS: [&str; 2] = ["bad_refresh_token", "invalid_grant"];

/// What a failed attempt comes to. Only the grant's refusal breaks a connection: refreshd's own
/// client being refused (`invalid_client`, `incorrect_client_credentials`) is a configuration
/// problem that a fix ends, so it backs off like any other failure.
pub fn classify(attempt: FailedAttempt<'_>) -> FailureKind {
    match attempt {
        FailedAttempt::NotSent => FailureKind::Transient,
        FailedAttempt::NoAnswer => FailureKind::Unknown,
        FailedAttempt::Answered {
            error: Some(error), ..
        } if REFUSING_ERRORS.contains(&error) => FailureKind::Refused,
        FailedAttempt::Answered { .. } => FailureKind::Transient,
    }
}

/// The longest `last_error` kept, in characters; longer ones are cut.
pub const LAST_ERROR_MAX_CHARS: usize = 500;

/// What `Connections::record_failure` writes for a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfterFailure {
    pub status: ConnectionStatus,
    /// The failure's text, cut to `LAST_ERROR_MAX_CHARS`.
    pub last_error: String,
    pub retry_after: Option<Timestamp>,
    /// A broken connection is never looked at again; one backing off when its wait ends.
    pub next_refresh_at: Option<Timestamp>,
}

pub fn after_failure(failure: &Failure) -> AfterFailure {
    let cut = |error: &str| error.chars().take(LAST_ERROR_MAX_CHARS).collect::<String>();
    match failure {
        Failure::Broken { error } => AfterFailure {
            status: ConnectionStatus::Broken,
            last_error: cut(error),
            retry_after: None,
            next_refresh_at: None,
        },
        Failure::BackingOff { error, retry_after } => AfterFailure {
            status: ConnectionStatus::BackingOff,
            last_error: cut(error),
            retry_after: Some(*retry_after),
            next_refresh_at: Some(*retry_after),
        },
    }
}

#[cfg(test)]
mod tests {
    use refreshd_core::{ConnectionId, Scopes, SealedToken, Upstream};

    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    fn tokens(access_expires_in: Option<i64>, refresh: bool) -> ConnectionTokens {
        ConnectionTokens {
            access: SealedToken::from_stored(vec![1]),
            access_expires_at: access_expires_in.map(|s| NOW.plus_secs(s)),
            refresh: refresh.then(|| SealedToken::from_stored(vec![2])),
            refresh_expires_at: None,
            scopes: Scopes::parse("repo"),
        }
    }

    fn connection() -> Connection {
        Connection {
            id: ConnectionId::parse("c").unwrap(),
            upstream: Upstream::Github,
            status: ConnectionStatus::Live,
            tokens: tokens(Some(28_800), true),
            last_refreshed_at: NOW,
            next_refresh_at: Some(NOW),
            failure_count: 0,
            last_error: None,
            retry_after: None,
            claimed_until: None,
            metadata: None,
            version: 1,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[test]
    fn due_once_its_time_has_come_unless_broken_waiting_or_claimed() {
        assert!(is_due(&connection(), NOW));
        let at = |c: Connection, now: i64| is_due(&c, Timestamp(now));
        let later = Connection {
            next_refresh_at: Some(NOW.plus_secs(1)),
            ..connection()
        };
        assert!(!at(later.clone(), NOW.0) && at(later, NOW.0 + 1));
        let never = Connection {
            next_refresh_at: None,
            ..connection()
        };
        assert!(!at(never, i64::MAX));
        let broken = Connection {
            status: ConnectionStatus::Broken,
            ..connection()
        };
        assert!(!at(broken, NOW.0 + 1_000_000));
        let waiting = Connection {
            status: ConnectionStatus::BackingOff,
            retry_after: Some(NOW.plus_secs(30)),
            ..connection()
        };
        assert!(!at(waiting.clone(), NOW.0 + 29) && at(waiting, NOW.0 + 30));
        let claimed = Connection {
            claimed_until: Some(NOW.plus_secs(60)),
            ..connection()
        };
        assert!(!at(claimed.clone(), NOW.0 + 59) && at(claimed, NOW.0 + 60));
    }

    #[test]
    fn only_another_holders_lasting_claim_is_in_the_way() {
        let (me, other) = ([1u8; 16], [2u8; 16]);
        let until = Some(NOW.plus_secs(30));
        assert_eq!(claim_in_the_way(None, None, &me, NOW), None);
        assert_eq!(
            claim_in_the_way(Some(&other), until, &me, NOW),
            Some(NOW.plus_secs(30))
        );
        assert_eq!(claim_in_the_way(Some(&me), until, &me, NOW), None);
        assert_eq!(
            claim_in_the_way(Some(&other), until, &me, NOW.plus_secs(30)),
            None
        );
    }

    #[test]
    fn refreshes_the_lead_time_before_expiry_never_later() {
        let schedule = RefreshSchedule::default();
        let eight_hours = tokens(Some(28_800), true);
        assert_eq!(
            schedule.next_refresh_at(&eight_hours, NOW, 0.0),
            Some(NOW.plus_secs(28_800 - 600))
        );
        // Jitter only ever moves it earlier, by up to a fifth of the lead.
        for jitter in [0.0, 0.3, 0.999, 1.0, 7.0, -1.0] {
            let at = schedule.next_refresh_at(&eight_hours, NOW, jitter).unwrap();
            assert!(at <= NOW.plus_secs(28_800 - 600), "{jitter}");
            assert!(at >= NOW.plus_secs(28_800 - 720), "{jitter}");
        }
    }

    #[test]
    fn a_short_lived_token_is_refreshed_halfway_not_at_once() {
        let schedule = RefreshSchedule::default();
        let five_minutes = tokens(Some(300), true);
        assert_eq!(
            schedule.next_refresh_at(&five_minutes, NOW, 0.0),
            Some(NOW.plus_secs(150))
        );
        let expired = tokens(Some(-10), true);
        assert_eq!(
            schedule.next_refresh_at(&expired, NOW, 0.5),
            Some(NOW.plus_secs(MIN_REFRESH_GAP_SECS))
        );
    }

    #[test]
    fn idle_connections_are_kept_alive_and_expiring_refresh_tokens_renewed() {
        let schedule = RefreshSchedule::default();
        let never_expires = tokens(None, true);
        assert_eq!(
            schedule.next_refresh_at(&never_expires, NOW, 0.0),
            Some(NOW.plus_secs(604_800))
        );
        let jittered = schedule.next_refresh_at(&never_expires, NOW, 0.5).unwrap();
        assert_eq!(jittered, NOW.plus_secs(604_800 - 30_240));
        let refresh_dies_in_a_day = ConnectionTokens {
            refresh_expires_at: Some(NOW.plus_secs(86_400)),
            ..never_expires
        };
        assert_eq!(
            schedule.next_refresh_at(&refresh_dies_in_a_day, NOW, 0.0),
            Some(NOW.plus_secs(86_400 - 600))
        );
    }

    #[test]
    fn nothing_to_refresh_without_a_refresh_token() {
        let schedule = RefreshSchedule::default();
        assert_eq!(
            schedule.next_refresh_at(&tokens(Some(28_800), false), NOW, 0.0),
            None
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff::default();
        let plain: Vec<i64> = (1..=9).map(|n| backoff.delay_secs(n, 0.0)).collect();
        assert_eq!(plain, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff.delay_secs(0, 0.0), 30, "the first failure at least");
        assert_eq!(backoff.delay_secs(i64::MAX, 0.0), 3600, "no overflow");
        for n in 1..=12 {
            for jitter in [0.0, 0.25, 0.5, 0.999] {
                let d = backoff.delay_secs(n, jitter);
                let full = backoff.delay_secs(n, 0.0);
                assert!(d <= full && d >= full / 2, "{n} {jitter}: {d}");
            }
        }
        assert_eq!(backoff.delay_secs(3, 0.5), 90);
        assert_eq!(backoff.retry_after(1, NOW, 0.0), NOW.plus_secs(30));
        let tiny = Backoff {
            first_secs: 0,
            max_secs: 0,
        };
        assert_eq!(tiny.delay_secs(1, 0.9), 1);
    }

    #[test]
    fn only_the_grants_refusal_breaks_a_connection() {
        let answered = |status, error| classify(FailedAttempt::Answered { status, error });
        assert_eq!(
            answered(200, Some("bad_refresh_token")),
            FailureKind::Refused
        );
        assert_eq!(answered(400, Some("invalid_grant")), FailureKind::Refused);
        for (status, error) in [
            (401, Some("invalid_client")),
            (200, Some("incorrect_client_credentials")),
            (500, None),
            (503, Some("temporarily_unavailable")),
            (429, None),
            (400, None),
        ] {
            assert_eq!(
                answered(status, error),
                FailureKind::Transient,
                "{status} {error:?}"
            );
        }
        assert_eq!(classify(FailedAttempt::NotSent), FailureKind::Transient);
        assert_eq!(classify(FailedAttempt::NoAnswer), FailureKind::Unknown);
    }

    #[test]
    fn a_failure_writes_its_status_wait_and_cut_error() {
        let broken = after_failure(&Failure::Broken {
            error: "invalid_grant: Token has been expired or revoked.".into(),
        });
        assert_eq!(broken.status, ConnectionStatus::Broken);
        assert_eq!((broken.retry_after, broken.next_refresh_at), (None, None));
        let waiting = after_failure(&Failure::BackingOff {
            error: "é".repeat(2 * LAST_ERROR_MAX_CHARS),
            retry_after: NOW,
        });
        assert_eq!(waiting.status, ConnectionStatus::BackingOff);
        assert_eq!(
            (waiting.retry_after, waiting.next_refresh_at),
            (Some(NOW), Some(NOW))
        );
        assert_eq!(waiting.last_error.chars().count(), LAST_ERROR_MAX_CHARS);
    }
}
