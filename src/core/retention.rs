//! Retention (`session.prune({ before })`): which version stays the oldest readable one, and which
//! records only older versions needed. Pure: the engine lists the keys and deletes what this says.

use crate::core::error::CoreError;
use crate::core::guard::release;
use crate::core::record::{Head, SnapshotRef};

/// The oldest version a prune keeps: the newest snapshot at or below `before` among `snapshots`
/// (the versions of the snapshots the head's chain names), since `at(before)` and later need it
/// and the batches after it; `None` when there is none (nothing can go).
pub fn oldest_kept(snapshots: &[u64], before: u64) -> Option<u64> {
    snapshots.iter().copied().filter(|version| *version <= before).max()
}

/// Whether a record (`kind` `e` batch, `s` snapshot, `g` segment, at `version` under `token`) is
/// needed by no version from `kept` on: batches and snapshots below it, and segments below it that no
/// kept snapshot names. When the prune wrote the snapshot of `kept` itself (`written`), it replaces
/// the older snapshots of that version (under lower tokens: written before its lease), and names
/// every segment still needed; one under a higher token is a later prune's, which replaced it in
/// turn (its deletes run after its lease is given back) and which the head names now.
pub fn doomed(
    kind: char,
    version: u64,
    token: u64,
    kept: u64,
    written: Option<SnapshotRef>,
    kept_segments: &[SnapshotRef],
) -> bool {
    let replaced = written.is_some_and(|w| version == kept && token < w.token);
    match kind {
        'e' => version < kept,
        'g' => (version < kept || replaced) && !kept_segments.contains(&SnapshotRef { version, token }),
        _ => version < kept || replaced,
    }
}

/// The head a prune by the holder of `token` writes: versions below `kept` pruned, the lease given
/// back (a prune changes no version); `snapshot`, when the prune wrote one of the latest version,
/// becomes the head's. `None` when the head no longer carries `token`.
pub fn pruned(head: &Head, token: u64, kept: u64, snapshot: Option<SnapshotRef>) -> Result<Head, CoreError> {
    let mut released = release(head, token).ok_or(CoreError::LeaseLost { token })?;
    released.retained = released.retained.max(kept);
    if let Some(snapshot) = snapshot {
        released.snapshot = Some(snapshot);
        released.commits.clear();
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_replaces_the_older_snapshots_of_its_version_not_a_later_prunes() {
        let written = Some(SnapshotRef { version: 10, token: 7 });
        // The snapshot a commit wrote at 10 before the prune's lease, and its segment: replaced.
        assert!(doomed('s', 10, 5, 10, written, &[]));
        assert!(doomed('g', 10, 5, 10, written, &[]));
        // Its own.
        assert!(!doomed('s', 10, 7, 10, written, &[]));
        // A later prune's, at the same version under a higher token: the head names it now.
        assert!(!doomed('s', 10, 8, 10, written, &[]));
        assert!(!doomed('g', 10, 8, 10, written, &[]));
        // Below the kept version: gone, unless a kept snapshot names the segment.
        assert!(doomed('e', 9, 8, 10, written, &[]));
        assert!(!doomed('g', 4, 3, 10, written, &[SnapshotRef { version: 4, token: 3 }]));
    }
}
