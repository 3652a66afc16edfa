//! `session.prune({ before })`: under the guard, the head moves first (the oldest readable
//! version), then the records only older versions needed are deleted. The rules are in
//! `core/retention.rs`; this file reads the snapshot chain, writes and deletes.

use std::rc::Rc;

use crate::core::guard::Intent;
use crate::core::record::SnapshotRef;
use crate::core::snapshot::self_contained;
use crate::core::{codec, keys, retention};
use crate::engine::error::EngineResult;
use crate::engine::load;
use crate::engine::session::{BeginOptions, Session};
use crate::engine::EngineError;
use crate::store::Expect;

/// Keys listed at a time while pruning.
const LIST_PAGE: usize = 1000;

impl Session {
    /// Deletes what only versions below `before` need; returns how many records went. With
    /// `before` at the latest version, a snapshot of it is written first, so that nothing older
    /// is needed at all.
    pub async fn prune(self: &Rc<Self>, before: u64) -> EngineResult<u64> {
        // A prune refused by the head's versions, or with nothing to do, takes no lease: it writes
        // nothing and keeps no other store's begin waiting. Checked again under the lease.
        // (An expired session is refused by the guard, as before.)
        let (head, _) = self.read_head().await?;
        if head.effective_status(self.shared.now()) != crate::core::lifecycle::Status::Expired {
            check_before(self.id(), &head, before)?;
            // Nothing is below version 0, nor below what an earlier prune kept (at the latest
            // version a prune writes its snapshot again: under the store's current key).
            if before == 0 || (before < head.version && before <= head.retained) {
                return Ok(0);
            }
        }
        // Decided on the stored head, not on this view's status (another process may have
        // interrupted or resumed the session since): the release leaves an interrupt waiting.
        let invocation =
            self.acquire(Intent::Maintain, BeginOptions::default()).await.map_err(|error| match error {
                EngineError::Core(refusal) => EngineError::Core(refusal.named_for("prune")),
                other => other,
            })?;
        let result = match self.prune_held(&invocation, before).await {
            // A delete by another store (it takes no lease) removed what the prune was reading.
            Err(error) => Err(self.pruned_or(error, before).await),
            pruned => pruned,
        };
        if !invocation.is_ended() {
            let _ = invocation.abort().await;
        }
        result
    }

    async fn prune_held(&self, invocation: &crate::engine::Invocation, before: u64) -> EngineResult<u64> {
        let shared = &self.shared;
        let store = &*shared.store;
        let id = self.id();
        let head = self.head();
        check_before(id, &head, before)?;
        let token = invocation.token();
        // The snapshots the head's chain names, newest first, with the segments each names.
        let mut chain = Vec::new();
        let mut records = Vec::new();
        let mut written = None;
        let mut cursor = head.snapshot.filter(|_| before < head.version);
        while let Some(at) = cursor.filter(|at| at.version >= head.retained) {
            let snapshot = load::read_snapshot(store, id, at).await?;
            cursor = snapshot.previous;
            chain.push((at.version, snapshot.segments));
        }
        if before == head.version && before > 0 {
            // A snapshot of the latest version that builds on none (one segment holds every message
            // and value), under this prune's token and so under the store's current key: no older
            // record stays needed, not even a segment an older snapshot wrote, so a prune at the
            // latest version leaves nothing sealed under a retired key, or not at all.
            let (previous, commits) = match self.snapshot_meta(head.snapshot).await? {
                // A snapshot of this version already: the new one takes its place in the chain.
                Some((old, _)) if old.version == before => (old.previous, old.commits.clone()),
                _ => (head.snapshot, head.commits.clone()),
            };
            let (segment, snapshot) = self_contained((*self.state()?).clone(), previous, before, token, commits);
            if let Some(segment) = segment {
                records.push((keys::segment_key(id, before, token), codec::encode_segment(&segment)));
            }
            records.push((keys::snapshot_key(id, before, token), codec::encode_segmented_snapshot(&snapshot)));
            chain.push((before, snapshot.segments.clone()));
            written = Some(snapshot);
        }
        let versions: Vec<u64> = chain.iter().map(|(version, _)| *version).collect();
        let Some(kept) =
            retention::oldest_kept(&versions, before).filter(|kept| *kept > head.retained || written.is_some())
        else {
            return Ok(0);
        };
        let kept_segments: Vec<SnapshotRef> = chain
            .iter()
            .filter(|(version, _)| *version >= kept)
            .flat_map(|(_, segments)| segments.iter().copied())
            .collect();
        let snapshot_ref = written.as_ref().map(|s| SnapshotRef { version: s.version, token });
        let (current, current_version) = invocation.current_head();
        let mut pruned = retention::pruned(&current, token, kept, snapshot_ref)?;
        if written.is_some() {
            // The snapshot holds the view as loaded, which is migrated to this store's schema: the
            // head says so, or every load would migrate it again (the originals are gone).
            pruned.schema = pruned.schema.max(shared.config.schema_version);
        }
        let head_key = keys::head_key(id);
        let stale = invocation.live.take_stale();
        let head = crate::engine::head_value(&pruned);
        let keys_written: Vec<String> = records.iter().map(|(key, _)| key.clone()).collect();
        let committed =
            crate::store::commit_deleting(store, records, &head_key, head, Expect::Version(current_version), stale);
        let Some(new_version) = committed.await? else {
            // The head moved under the lease: refused, so no head names the snapshot written for it
            // (its keys carry this prune's token), which goes. A delete meanwhile is the answer.
            crate::store::discard_records(store, keys_written).await;
            return Err(match load::read_head(store, id).await {
                Ok(None) => self.deleted(),
                _ => EngineError::Conflict(id.to_owned()),
            });
        };
        invocation.released_by(&pruned);
        if let Some(snapshot) = written {
            self.remember_snapshot(snapshot);
        }
        let (version, status) = (pruned.version, pruned.status);
        self.apply_commit(pruned, new_version, Some(&current), &[]);
        self.announce(version, status);
        // The head no longer leads to anything below `kept`: delete it.
        let mut deleted = 0;
        let escaped = keys::escape_id(id);
        for prefix in [format!("e/{escaped}/"), format!("s/{escaped}/"), format!("g/{escaped}/")] {
            let mut cursor: Option<String> = None;
            loop {
                let page = store.list(&prefix, cursor.as_deref(), LIST_PAGE).await?;
                // A chunk of a record too large for one value goes with its record.
                let doomed: Vec<String> = page
                    .keys
                    .into_iter()
                    .filter(|key| {
                        keys::parse_record_key(keys::owner_record(key)).is_some_and(|(kind, version, token)| {
                            retention::doomed(kind, version, token, kept, snapshot_ref, &kept_segments)
                        })
                    })
                    .collect();
                let records = doomed.iter().filter(|key| keys::owner_record(key) == key.as_str()).count() as u64;
                store.delete_keys(doomed).await?;
                deleted += records;
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(deleted)
    }
}

/// A prune's `before` must name a version the session has.
fn check_before(id: &str, head: &crate::core::record::Head, before: u64) -> EngineResult<()> {
    if before > head.version {
        return Err(EngineError::NotFound(format!(
            "prune: session \"{id}\" has no version {before}; its latest version is {}",
            head.version
        )));
    }
    Ok(())
}
