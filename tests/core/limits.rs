//! Limits: name lengths are validation errors, sizes over a limit are `LimitExceeded`.

use agent_session::core::limits::{
    check_name, check_reason, check_traceparent, Limits, MAX_NAME_BYTES, MAX_REASON_BYTES, MAX_TRACEPARENT_BYTES,
};
use agent_session::core::CoreError;

#[track_caller]
fn assert_invalid(result: Result<(), CoreError>) -> String {
    match result {
        Err(error @ CoreError::InvalidInput { .. }) => {
            assert_eq!(error.code(), "INVALID_INPUT");
            error.to_string()
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn names_are_1_to_256_bytes() {
    assert_eq!(MAX_NAME_BYTES, 256);
    let message = assert_invalid(check_name("a session id", ""));
    assert!(message.contains("a session id") && message.contains("got 0 bytes"), "{message}");
    let message = assert_invalid(check_name("an agent name", &"x".repeat(257)));
    assert!(message.contains("an agent name") && message.contains("257"), "{message}");
    assert_eq!(check_name("a session id", "x"), Ok(()));
    assert_eq!(check_name("a session id", &"x".repeat(256)), Ok(()));
    // Bytes, not characters: 128 two-byte characters fit, one more byte does not.
    assert_eq!(check_name("a state key", &"é".repeat(128)), Ok(()));
    assert_invalid(check_name("a state key", &format!("{}a", "é".repeat(128))));
    // Any characters are allowed.
    assert_eq!(check_name("a session id", "\0/%~.."), Ok(()));
}

#[test]
fn sizes_over_a_limit_are_limit_exceeded() {
    let limits = Limits { max_message_bytes: 10, max_state_value_bytes: 20, max_commit_bytes: 30 };
    assert_eq!(limits.check_message(10), Ok(()));
    assert_eq!(limits.check_state_value(20), Ok(()));
    assert_eq!(limits.check_commit(30), Ok(()));
    assert_eq!(limits.check_message(0), Ok(()));
    let cases = [
        (limits.check_message(11), "a message", "maxMessageBytes", 10, 11),
        (limits.check_state_value(21), "a state value", "maxStateValueBytes", 20, 21),
        (limits.check_commit(31), "the staged commit", "maxCommitBytes", 30, 31),
        (limits.check_message(usize::MAX), "a message", "maxMessageBytes", 10, usize::MAX as u64),
    ];
    for (result, what, option, limit, actual) in cases {
        let error = result.unwrap_err();
        assert_eq!(error, CoreError::LimitExceeded { what, option, limit, actual });
        assert_eq!(error.code(), "LIMIT_EXCEEDED");
        let text = error.to_string();
        assert!(
            text.contains(&limit.to_string()) && text.contains(&actual.to_string()) && text.contains(option),
            "{text}"
        );
    }
}

#[test]
fn default_limits() {
    let limits = Limits::default();
    assert_eq!(limits.max_message_bytes, 1 << 20);
    assert_eq!(limits.max_state_value_bytes, 1 << 20);
    assert_eq!(limits.max_commit_bytes, 4 << 20);
    assert!(limits.check_message(1 << 20).is_ok());
    assert!(limits.check_message((1 << 20) + 1).is_err());
}

#[test]
fn reasons_and_traceparents() {
    let reason = |text: &str| check_reason("a stop reason", "options.reason", text);
    assert_eq!(reason(""), Ok(()));
    assert_eq!(reason(&"r".repeat(MAX_REASON_BYTES)), Ok(()));
    assert_invalid(reason(&"r".repeat(MAX_REASON_BYTES + 1)));
    match reason(&"r".repeat(MAX_REASON_BYTES + 1)) {
        Err(CoreError::InvalidInput { path, message }) => {
            assert_eq!(path.as_deref(), Some("options.reason"));
            assert!(message.starts_with("a stop reason must be at most 4096"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(check_traceparent(traceparent), Ok(()));
    assert_eq!(check_traceparent(&"0".repeat(MAX_TRACEPARENT_BYTES)), Ok(()));
    assert_invalid(check_traceparent(&"0".repeat(MAX_TRACEPARENT_BYTES + 1)));
    assert_invalid(check_traceparent("00-é"));
}
