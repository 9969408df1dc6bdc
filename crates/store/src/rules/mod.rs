//! The rules every adapter applies the same way, as plain functions over what the adapter
//! read: each adapter keeps only the SQL that fetches their inputs and applies their result.

pub mod connections;
pub mod device_poll;
pub mod pair_state;
pub mod rotation;
pub mod sign_in;
pub mod signing_keys;
pub mod sweep;
pub mod webhooks;

pub use device_poll::{DeviceState, PollVerdict, judge_poll};
pub use pair_state::PairState;
pub use rotation::{FailedRotation, PresentedPair, SuccessorPair, judge_failed_rotation};
pub use sign_in::attempt_login;
pub use signing_keys::{KeyState, key_state, published_keys};
pub use sweep::{Deletion, SWEEP_STRETCH, SweepCursor, SweepPlan};
