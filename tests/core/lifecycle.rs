//! `lifecycle::transition`: the whole table, every refused move with its typed error.

use agent_session::core::error::{CoreError, Phase};
use agent_session::core::lifecycle::{transition, Action, Status};

const STATUSES: [Status; 5] = [Status::Idle, Status::Running, Status::Interrupted, Status::Closed, Status::Expired];

const ACTIONS: [Action; 11] = [
    Action::Begin,
    Action::Resume,
    Action::Close,
    Action::Commit,
    Action::Interrupt,
    Action::CommitClose,
    Action::Release { interrupted: false },
    Action::Release { interrupted: true },
    Action::Expire,
    Action::Fork,
    Action::Maintain,
];

/// The table of DESIGN.md "Lifecycle", written out move by move (not derived from the code).
fn allowed(from: Status, action: Action) -> Option<Status> {
    use Status::*;
    Some(match (from, action) {
        (Idle, Action::Begin) => Running,
        (Interrupted, Action::Resume) => Running,
        (Idle, Action::Close) => Running,
        (Interrupted, Action::Close) => Running,
        (Running, Action::Commit) => Idle,
        (Running, Action::Interrupt) => Interrupted,
        (Running, Action::CommitClose) => Closed,
        (Running, Action::Release { interrupted: false }) => Idle,
        (Running, Action::Release { interrupted: true }) => Interrupted,
        (Idle, Action::Expire) => Expired,
        (Running, Action::Expire) => Expired,
        (Interrupted, Action::Expire) => Expired,
        (Idle, Action::Fork) => Idle,
        (Running, Action::Fork) => Running,
        (Interrupted, Action::Fork) => Interrupted,
        // A prune of a closed session: its lease and release leave it closed.
        (Closed, Action::Maintain) => Closed,
        (Closed, Action::Release { interrupted: false }) => Closed,
        (Closed, Action::Release { interrupted: true }) => Closed,
        _ => return None,
    })
}

fn expected_name(action: Action) -> &'static str {
    match action {
        Action::Begin => "begin",
        Action::Resume => "resume",
        Action::Close | Action::CommitClose => "close",
        Action::Commit => "commit",
        Action::Interrupt => "interrupt",
        Action::Release { .. } => "abort",
        Action::Expire => "expire",
        Action::Fork => "fork",
        Action::Maintain => "prune",
    }
}

#[test]
fn every_status_and_action() {
    let mut allowed_moves = 0;
    for from in STATUSES {
        for action in ACTIONS {
            let got = transition(from, action);
            match allowed(from, action) {
                Some(to) => {
                    allowed_moves += 1;
                    assert_eq!(got, Ok(to), "{from:?} x {action:?}");
                }
                None => {
                    let want = match from {
                        Status::Closed => CoreError::SessionClosed { action: expected_name(action) },
                        Status::Expired => CoreError::SessionExpired { action: expected_name(action) },
                        _ => CoreError::InvalidTransition { from: Phase::Status(from), action: expected_name(action) },
                    };
                    assert_eq!(got, Err(want), "{from:?} x {action:?}");
                }
            }
        }
    }
    assert_eq!(allowed_moves, 18);
}

#[test]
fn terminal_statuses_refuse_every_change_of_status() {
    for from in [Status::Closed, Status::Expired] {
        assert!(from.is_terminal());
        for action in ACTIONS {
            if let Ok(to) = transition(from, action) {
                // A closed session's prune, which changes nothing of its status.
                assert_eq!((from, to), (Status::Closed, Status::Closed), "{action:?}");
                continue;
            }
            let error = transition(from, action).unwrap_err();
            let code = if from == Status::Closed { "SESSION_CLOSED" } else { "SESSION_EXPIRED" };
            assert_eq!(error.code(), code, "{from:?} x {action:?}");
        }
    }
    for from in [Status::Idle, Status::Running, Status::Interrupted] {
        assert!(!from.is_terminal());
    }
}

#[test]
fn action_names() {
    for action in ACTIONS {
        assert_eq!(action.name(), expected_name(action));
    }
}

#[test]
fn status_strings() {
    let names: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["idle", "running", "interrupted", "closed", "expired"]);
}

#[test]
fn refusal_messages_point_at_the_way_out() {
    let begin_interrupted = transition(Status::Interrupted, Action::Begin).unwrap_err();
    assert_eq!(begin_interrupted.code(), "INVALID_TRANSITION");
    let text = begin_interrupted.to_string();
    assert!(text.contains("interrupted") && text.contains("resume"), "{text}");

    let resume_idle = transition(Status::Idle, Action::Resume).unwrap_err();
    let text = resume_idle.to_string();
    assert!(text.contains("idle") && text.contains("only for a session whose status is \"interrupted\""), "{text}");

    let closed = transition(Status::Closed, Action::Begin).unwrap_err().to_string();
    assert!(closed.contains("closed") && closed.contains("new session"), "{closed}");
}

#[test]
fn the_status_of_an_old_version_follows_its_last_event_before_a_stop() {
    use agent_session::core::lifecycle::status_at;
    use agent_session::core::record::TurnOutcome;
    use agent_session::core::Event;
    let interrupt = Event::Interrupt { reason: "approve".into(), data: "null".into() };
    let message = Event::Message { agent: "default".into(), data: "1".into() };
    let stopped = Event::Stopped { reason: "user".into(), by: "b".into(), outcome: TurnOutcome::Stopped };
    assert_eq!(status_at(&[message.clone(), interrupt.clone()]), Status::Interrupted);
    assert_eq!(status_at(&[Event::Closed]), Status::Closed);
    assert_eq!(status_at(&[Event::Resume { data: "1".into() }, message.clone()]), Status::Idle);
    assert_eq!(status_at(&[]), Status::Idle);
    // A turn asked to stop that ended with an interrupt: the stop is recorded after it.
    assert_eq!(status_at(&[message.clone(), interrupt, stopped.clone()]), Status::Interrupted);
    assert_eq!(status_at(&[message, stopped]), Status::Idle);
}
