//! The submission state machine: `draft → submitted → verified`, with `returned` for a
//! submission sent back to its assessor, and corrections of verified submissions once the cycle
//! is published.
//!
//! Every allowed move is one row of [`SubmissionState::TRANSITIONS`]; every other move is refused.

/// The state of one unit's submission in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubmissionState {
    /// Being filled in.
    Draft,
    /// Sent for review: values are locked.
    Submitted,
    /// Sent back by a reviewer with comments: editable again.
    Returned,
    /// Accepted by a reviewer: its values count in the results.
    Verified,
}

/// What is done to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubmissionAction {
    /// Change its values.
    Edit,
    /// Send it for review.
    Submit,
    /// Send it back to the assessor.
    Return,
    /// Accept it.
    Verify,
    /// Change a verified submission's values after publication, with a reason.
    Correct,
    /// Send a verified submission back to its office before publication: HQ escalated an
    /// integrity flag about it.
    Escalate,
}

/// A move the submission state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a {from} submission", action.verb())]
pub struct InvalidSubmissionTransition {
    /// The state the submission is in.
    pub from: SubmissionState,
    /// What was asked.
    pub action: SubmissionAction,
}

/// A submission state spelled in an unknown way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown submission state `{0}`")]
pub struct UnknownSubmissionState(pub String);

impl SubmissionState {
    /// Every state.
    pub const ALL: [SubmissionState; 4] = [
        SubmissionState::Draft,
        SubmissionState::Submitted,
        SubmissionState::Returned,
        SubmissionState::Verified,
    ];

    /// The transition table: every allowed move, `(from, action, to)`.
    pub const TRANSITIONS: [(SubmissionState, SubmissionAction, SubmissionState); 8] = [
        (
            SubmissionState::Draft,
            SubmissionAction::Edit,
            SubmissionState::Draft,
        ),
        (
            SubmissionState::Returned,
            SubmissionAction::Edit,
            SubmissionState::Returned,
        ),
        (
            SubmissionState::Draft,
            SubmissionAction::Submit,
            SubmissionState::Submitted,
        ),
        (
            SubmissionState::Returned,
            SubmissionAction::Submit,
            SubmissionState::Submitted,
        ),
        (
            SubmissionState::Submitted,
            SubmissionAction::Return,
            SubmissionState::Returned,
        ),
        (
            SubmissionState::Submitted,
            SubmissionAction::Verify,
            SubmissionState::Verified,
        ),
        (
            SubmissionState::Verified,
            SubmissionAction::Correct,
            SubmissionState::Verified,
        ),
        (
            SubmissionState::Verified,
            SubmissionAction::Escalate,
            SubmissionState::Returned,
        ),
    ];

    /// The spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionState::Draft => "draft",
            SubmissionState::Submitted => "submitted",
            SubmissionState::Returned => "returned",
            SubmissionState::Verified => "verified",
        }
    }

    /// The state after `action`, if the table allows it.
    pub fn apply(
        self,
        action: SubmissionAction,
    ) -> Result<SubmissionState, InvalidSubmissionTransition> {
        Self::TRANSITIONS
            .iter()
            .find(|(from, a, _)| *from == self && *a == action)
            .map(|(_, _, to)| *to)
            .ok_or(InvalidSubmissionTransition { from: self, action })
    }

    /// Whether its values may still change without a correction.
    pub fn is_editable(self) -> bool {
        self.apply(SubmissionAction::Edit).is_ok()
    }
}

impl SubmissionAction {
    /// Every action.
    pub const ALL: [SubmissionAction; 6] = [
        SubmissionAction::Edit,
        SubmissionAction::Submit,
        SubmissionAction::Return,
        SubmissionAction::Verify,
        SubmissionAction::Correct,
        SubmissionAction::Escalate,
    ];

    /// The action as a verb (`edit`, `submit`, `return`, `verify`, `correct`, `escalate`).
    pub fn verb(self) -> &'static str {
        match self {
            SubmissionAction::Edit => "edit",
            SubmissionAction::Submit => "submit",
            SubmissionAction::Return => "return",
            SubmissionAction::Verify => "verify",
            SubmissionAction::Correct => "correct",
            SubmissionAction::Escalate => "escalate",
        }
    }

    /// The states it is allowed from, from the table.
    pub fn allowed_from(self) -> Vec<SubmissionState> {
        SubmissionState::TRANSITIONS
            .iter()
            .filter(|(_, a, _)| *a == self)
            .map(|(from, _, _)| *from)
            .collect()
    }
}

impl std::fmt::Display for SubmissionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SubmissionState {
    type Err = UnknownSubmissionState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownSubmissionState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::{SubmissionAction as A, SubmissionState as S};

    #[test]
    fn every_move_outside_the_table_is_refused() {
        for from in S::ALL {
            for action in A::ALL {
                let row = S::TRANSITIONS
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action);
                match row {
                    Some((_, _, to)) => assert_eq!(from.apply(action), Ok(*to)),
                    None => {
                        let refused = from.apply(action).unwrap_err();
                        assert_eq!((refused.from, refused.action), (from, action));
                        assert!(!action.allowed_from().contains(&from));
                    }
                }
            }
        }
        // The forbidden moves spelled out, so a change of the table shows up here too.
        for (from, action) in [
            (S::Draft, A::Return),
            (S::Draft, A::Verify),
            (S::Draft, A::Correct),
            (S::Submitted, A::Edit),
            (S::Submitted, A::Submit),
            (S::Submitted, A::Correct),
            (S::Returned, A::Return),
            (S::Returned, A::Verify),
            (S::Returned, A::Correct),
            (S::Verified, A::Edit),
            (S::Verified, A::Submit),
            (S::Verified, A::Return),
            (S::Verified, A::Verify),
            (S::Draft, A::Escalate),
            (S::Submitted, A::Escalate),
            (S::Returned, A::Escalate),
        ] {
            assert!(from.apply(action).is_err(), "{from}: {}", action.verb());
        }
        assert_eq!(
            S::Verified.apply(A::Return).unwrap_err().to_string(),
            "cannot return a verified submission"
        );
        // Only HQ's escalation of a flag sends a verified submission back.
        assert_eq!(S::Verified.apply(A::Escalate), Ok(S::Returned));
    }

    #[test]
    fn spelled_as_stored() {
        for state in S::ALL {
            assert_eq!(state.as_str().parse::<S>(), Ok(state));
        }
        assert!("approved".parse::<S>().is_err());
        assert!(S::Returned.is_editable() && !S::Submitted.is_editable());
    }
}
