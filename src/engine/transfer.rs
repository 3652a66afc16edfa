//! Export and import: a session's whole retained history as plain data, and a session written
//! back from it into any store (same versions, history, messages, state, status and pending
//! interrupt; never a lease). The bindings translate the JSON form; the checks are here.

use std::rc::Rc;

use crate::core::guard;
use crate::core::lifecycle::Status;
use crate::core::record::SnapshotRef;
use crate::core::snapshot::next_snapshot;
use crate::core::{codec, keys, limits, Batch, Commits, CoreError, Event, Head, Interrupt, Json, SessionState};
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::load::{self, HistoryEvent};
use crate::engine::session::Session;
use crate::engine::store::{OpenOptions, SessionStore};
use crate::store::budget;

/// The TTLs `store.import(data, { idleTtlMs, maxLifetimeMs })` gives the restored session, in
/// place of the export's `expiresAt`; one not given is the store's default, as for `open`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportTtls {
    pub idle_ttl_ms: Option<u64>,
    pub max_lifetime_ms: Option<u64>,
}

/// A session as exported: its head's application facts and every event it still has.
#[derive(Debug, Clone)]
pub struct SessionExport {
    pub id: String,
    pub version: u64,
    pub status: Status,
    pub created_at: u64,
    pub updated_at: u64,
    pub expires_at: Option<u64>,
    pub metadata: Option<Json>,
    /// The application schema the events were written under (`schema` store option; 0 without).
    pub schema: u64,
    /// A pruned session's oldest kept version (`None`: nothing pruned, or an export written before
    /// this field, whose first event's version says it).
    pub retained: Option<u64>,
    /// A pruned session's messages and state as of its oldest kept version (`retained`), as the
    /// events that set them, each at that version: an import writes them as a snapshot of it, so
    /// that `history()` keeps only that version's own events. `None`: nothing pruned, or an export
    /// written before this field, whose events at `retained` are these, then its interrupt.
    pub base: Option<Vec<HistoryEvent>>,
    /// In commit order; version 0 is the synthesized `created` event (no `event`).
    pub events: Vec<HistoryEvent>,
}

impl Session {
    /// The session's retained history (from its oldest kept version) and head facts. A running turn
    /// is not part of it (an export holds no lease): its status is the one the session rests at.
    /// A pruned session's state at its oldest kept version is given besides (`base`): the events
    /// that rebuild its messages and state values, which later versions build on.
    /// A prune by another store while it reads deletes versions it was reading: it starts again.
    pub async fn export(&self) -> EngineResult<SessionExport> {
        let (head, events, base) = loop {
            self.refresh().await?;
            let head = self.head();
            // (Up to the view's version: a commit since is not in this export.)
            let events = match self.history_with_metadata(Some(head.retained), Some(head.version)).await {
                Err(EngineError::NotFound(_)) => continue,
                read => read?.0,
            };
            // The base as stored (not `at()`, which gives the latest version as the session shows it:
            // migrated to this store's schema, while the export says the stored one).
            let base = match head.retained {
                0 => None,
                retained => match load::state_at(&*self.shared.store, self.id(), &head, retained).await {
                    Ok((state, _)) => Some(state),
                    Err(error) => match self.pruned_or(error, retained).await {
                        EngineError::NotFound(_) => continue,
                        error => return Err(error),
                    },
                },
            };
            break (head, events, base);
        };
        let base = base.map(|base| {
            let (at, invocation) =
                events.first().map_or((head.created_at, String::new()), |e| (e.at, e.invocation.clone()));
            base.to_events()
                .into_iter()
                .map(|event| HistoryEvent {
                    version: head.retained,
                    at,
                    invocation: invocation.clone(),
                    traceparent: None,
                    event: Some(event),
                })
                .collect()
        });
        let status = match head.effective_status(self.shared.now()) {
            Status::Running => head.resting_status(),
            status => status,
        };
        Ok(SessionExport {
            id: self.id().to_owned(),
            version: head.version,
            status,
            created_at: head.created_at,
            updated_at: head.updated_at,
            expires_at: head.expires_at(),
            metadata: head.metadata.clone(),
            schema: head.schema,
            retained: Some(head.retained).filter(|&retained| retained > 0),
            base,
            events,
        })
    }
}

/// An imported message or state value held to its limit; the error names `path`'s data.
fn check_value(event: &Event, limits: &limits::Limits, path: &str) -> EngineResult<()> {
    let checked = match event {
        Event::Message { data, .. } => limits.check_message(data.len()),
        Event::StateSet { data, .. } => limits.check_state_value(data.len()),
        _ => Ok(()),
    };
    checked.map_err(|error| EngineError::AtPath { path: format!("{path}.data"), error: Box::new(error.into()) })
}

/// The events of an export's `base`: the messages and state values of its oldest kept version
/// (`retained`, which a base needs), each at that version and within the value limits.
fn base_events(base: &[HistoryEvent], retained: Option<u64>, limits: &limits::Limits) -> EngineResult<Vec<Event>> {
    let Some(retained) = retained.filter(|&retained| retained > 0) else {
        return Err(invalid(
            "data.base".into(),
            "data.base is the state of a pruned session's oldest kept version: it needs data.retained".into(),
        ));
    };
    let mut events = Vec::with_capacity(base.len());
    for (index, event) in base.iter().enumerate() {
        let path = format!("data.base[{index}]");
        if event.version != retained {
            return Err(invalid(
                path,
                format!("a base event is at the oldest kept version {retained}, not at {}", event.version),
            ));
        }
        let Some(inner @ (Event::Message { .. } | Event::StateSet { .. })) = &event.event else {
            return Err(invalid(path, "a base holds only \"message\" and \"state.set\" events".into()));
        };
        check_value(inner, limits, &path)?;
        events.push(inner.clone());
    }
    Ok(events)
}

/// Refuses a "compacted" event that replaces more messages than its agent has there (the `base` of a
/// pruned export, then the events from `after_base` on, those before it being in the base): `inv.compact`
/// never writes one.
fn check_compactions(base: &[Event], events: &[HistoryEvent], after_base: usize) -> EngineResult<()> {
    // Few agents: a list, of the type a snapshot's counts have (no new generic code in the .wasm).
    let mut counts: Vec<(String, u64)> = Vec::new();
    let later = events.iter().enumerate().skip(after_base);
    let all = base.iter().map(|event| (0, Some(event))).chain(later.map(|(index, e)| (index, e.event.as_ref())));
    for (index, event) in all {
        // `replaced`: how many of the agent's messages the event replaces (a migration: all of them).
        let (agent, replaced, count) = match event {
            Some(Event::Message { agent, .. }) => (agent, Some(0), 1),
            Some(Event::Compacted { agent, before, summary }) => (agent, Some(*before), summary.len() as u64),
            Some(Event::Migrated { agent, messages, .. }) => (agent, None, messages.len() as u64),
            _ => continue,
        };
        let at = match counts.iter().position(|(name, _)| name == agent) {
            Some(at) => at,
            None => {
                counts.push((agent.clone(), 0));
                counts.len() - 1
            }
        };
        let has = counts[at].1;
        let replaced = match replaced {
            Some(replaced) if replaced > has => {
                return Err(invalid(
                    format!("data.events[{index}].before"),
                    format!("a \"compacted\" event replaces the first {replaced} messages of agent \"{agent}\", which has {has} there"),
                ));
            }
            Some(replaced) => replaced,
            None => has,
        };
        counts[at].1 = has - replaced + count;
    }
    Ok(())
}

/// Versions an import may hold (each is a record).
const MAX_IMPORT_VERSIONS: u64 = 1_000_000;
/// What one version's record costs in memory while an import is built, for the memory budget.
const BATCH_OVERHEAD: u64 = 96;

fn invalid(path: String, message: String) -> EngineError {
    CoreError::InvalidInput { path: Some(path), message }.into()
}

impl SessionStore {
    /// The export of session `id` for a backup of the store (`None`: it was deleted meanwhile). The
    /// view it loads is freed after, so that a backup's memory follows its largest session, not the
    /// store; a view this store held already (a `Session` the application reads) is left as it was.
    pub async fn export_session(&self, id: &str) -> EngineResult<Option<SessionExport>> {
        let held = self.shared().cache.get(id).is_some_and(|slot| slot.state().is_some());
        let session = match self.open(id, OpenOptions::default()).await {
            Ok(session) => session,
            Err(EngineError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let exported = session.export().await;
        if !held {
            session.dispose();
        }
        exported.map(Some)
    }

    /// Writes `data` as a new session `id` (the export's own id when `None`). Everything is checked
    /// before anything is written; an existing id is a `ValidationError` (path `id`).
    pub async fn import(
        &self,
        data: SessionExport,
        id: Option<String>,
        ttls: Option<ImportTtls>,
    ) -> EngineResult<Rc<Session>> {
        let shared = self.shared();
        shared.check_open()?;
        let id = id.unwrap_or_else(|| data.id.clone());
        limits::check_name("a session id", &id)?;
        let config = &shared.config;
        if data.status == Status::Running {
            return Err(invalid(
                "data.status".into(),
                "an export's status is never \"running\" (it holds no lease)".into(),
            ));
        }
        // Every version kept is a record (a pruned session's start at its oldest kept version, whose
        // base is its snapshot): bounded before anything is allocated for them.
        let first = match (&data.base, data.retained) {
            (Some(_), Some(retained)) if retained > 0 => retained,
            _ => 1,
        };
        let kept = (data.version + 1).saturating_sub(first);
        if kept > MAX_IMPORT_VERSIONS {
            return Err(invalid(
                "data.version".into(),
                format!(
                    "an import writes a record per version it keeps: {kept} (versions {first} to {}) is over the \
                     {MAX_IMPORT_VERSIONS} one import takes; prune the session (session.prune) and export it again",
                    data.version
                ),
            ));
        }
        budget::check("an import", kept.saturating_mul(BATCH_OVERHEAD))?;
        // Events in commit order, none above the export's version; each version's events a commit.
        let mut batches: Vec<Vec<Event>> = vec![Vec::new(); kept as usize];
        if let Some(metadata) = &data.metadata {
            config
                .limits
                .check_metadata(metadata.len())
                .map_err(|error| EngineError::AtPath { path: "data.metadata".into(), error: Box::new(error.into()) })?;
        }
        let mut last = 0;
        let mut bytes = 0u64;
        for (index, event) in data.events.iter().enumerate() {
            let path = format!("data.events[{index}]");
            if event.version < last {
                return Err(invalid(
                    path,
                    format!("events must be in commit order: version {} after {last}", event.version),
                ));
            }
            if event.version > data.version {
                return Err(invalid(
                    path,
                    format!("version {} is above the export's version {}", event.version, data.version),
                ));
            }
            last = event.version;
            let Some(inner) = &event.event else {
                if event.version > 0 {
                    return Err(invalid(path, "the \"created\" event is only at version 0".into()));
                }
                if index > 0 {
                    return Err(invalid(path, "a second \"created\" event: a session is created once".into()));
                }
                continue;
            };
            if event.version == 0 {
                return Err(invalid(path, "only the \"created\" event is at version 0".into()));
            }
            if event.version < first {
                return Err(invalid(path, format!("an event below the oldest kept version {first}")));
            }
            if let Event::Migrated { to, .. } = inner {
                // Its data is of schema `to`: under a lower `schema`, every load would migrate it again.
                if *to > data.schema {
                    return Err(invalid(
                        path,
                        format!("a \"migrated\" event to schema {to}, above the export's schema {}", data.schema),
                    ));
                }
            }
            check_value(inner, &config.limits, &path)?;
            bytes += inner.weight() as u64;
            batches[(event.version - first) as usize].push(inner.clone());
        }
        for (index, events) in batches.iter().enumerate() {
            config.limits.check_commit(events.iter().map(Event::weight).sum()).map_err(|error| {
                EngineError::AtPath {
                    path: format!("data.events (version {})", first + index as u64),
                    error: Box::new(error.into()),
                }
            })?;
        }
        let base = match &data.base {
            Some(base) => Some(base_events(base, data.retained, &config.limits)?),
            None => None,
        };
        // A pruned export's base is the state at its oldest kept version, that version's events applied.
        let after_base = match &base {
            Some(_) => data.events.iter().position(|event| event.version > first).unwrap_or(data.events.len()),
            None => 0,
        };
        check_compactions(base.as_deref().unwrap_or_default(), &data.events, after_base)?;
        bytes += base.iter().flatten().map(|event| event.weight() as u64).sum::<u64>();
        budget::check("an import", bytes)?;
        let now = shared.now();
        // The export's expiry is a time, not the TTLs that set it: kept as a lifetime, unless the
        // import gives TTLs, which then count from the export's createdAt and updatedAt as a session
        // opened with them would (commits extend an idle TTL; a fixed time they cannot).
        let (idle_ttl_ms, max_lifetime_ms) = match ttls {
            // An expired session stays expired, at the time it expired.
            Some(ttls) if data.status != Status::Expired => {
                (ttls.idle_ttl_ms.or(config.idle_ttl_ms), ttls.max_lifetime_ms.or(config.max_lifetime_ms))
            }
            _ => (None, data.expires_at.map(|at| at.saturating_sub(data.created_at))),
        };
        let mut head = Head::new(data.created_at, idle_ttl_ms, max_lifetime_ms, data.metadata.clone());
        let token = guard::first_token(crate::engine::store::random_u32(&*shared.env));
        head.last_token = token;
        head.version = data.version;
        head.commits = Commits::repeated(token, data.version);
        head.updated_at = data.updated_at.max(data.created_at);
        head.schema = data.schema;
        if data.schema > config.schema_version {
            return Err(EngineError::SchemaVersion { stored: data.schema, supported: config.schema_version });
        }
        // An export of a pruned session says from which version it keeps (its rebuilt oldest version may
        // have no events: nothing to rebuild); one written before it said so starts after version 0.
        head.retained = match data.retained {
            Some(retained) => {
                if retained > data.version {
                    return Err(invalid(
                        "data.retained".into(),
                        format!("retained ({retained}) is above the export's version {}", data.version),
                    ));
                }
                if let Some(index) = data.events.iter().position(|e| e.version < retained) {
                    return Err(invalid(
                        format!("data.events[{index}]"),
                        format!("an event below the oldest kept version {retained}"),
                    ));
                }
                retained
            }
            None if !data.events.iter().any(|e| e.event.is_none()) => data.events.first().map_or(0, |e| e.version),
            None => 0,
        };
        head.status = data.status;
        // A closed session takes no commit after its close, and never rests at another status.
        if let Some(index) = data.events.iter().position(|e| matches!(e.event, Some(Event::Closed))) {
            if index + 1 < data.events.len() {
                return Err(invalid(
                    format!("data.events[{}]", index + 1),
                    "an event after the \"closed\" event: a closed session takes no commit".into(),
                ));
            }
            if data.status != Status::Closed {
                return Err(invalid(
                    "data.status".into(),
                    format!("status \"{}\" after a \"closed\" event: it is \"closed\"", data.status.as_str()),
                ));
            }
        }
        if data.status == Status::Interrupted {
            // The pending interrupt is the last one, and no resume answered it.
            let last = data.events.iter().rev().find_map(|e| match &e.event {
                Some(event @ (Event::Interrupt { .. } | Event::Resume { .. })) => Some(event),
                _ => None,
            });
            head.interrupt = match last {
                Some(Event::Interrupt { reason, data }) => {
                    Some(Interrupt { reason: reason.clone(), payload: data.clone() })
                }
                Some(_) => {
                    return Err(invalid(
                        "data.status".into(),
                        "status \"interrupted\" with its last interrupt answered by a \"resume\" event".into(),
                    ))
                }
                None => {
                    return Err(invalid("data.status".into(), "status \"interrupted\" needs an interrupt event".into()))
                }
            };
        }
        let mut at_of = vec![(now, String::new(), None); kept as usize];
        for event in &data.events {
            if event.version >= first {
                at_of[(event.version - first) as usize] =
                    (event.at, event.invocation.clone(), event.traceparent.clone());
            }
        }
        let mut records = Vec::new();
        // A pruned session's base is a snapshot of its oldest kept version, as its prune left it: the
        // versions below are neither readable nor named by the head, and are not written.
        let first_written = match base {
            Some(events) => {
                let retained = head.retained;
                let (segment, snapshot) = next_snapshot(
                    &SessionState::default(),
                    &events,
                    None,
                    retained,
                    token,
                    Commits::repeated(token, retained),
                );
                if let Some(segment) = segment {
                    records.push((keys::segment_key(&id, retained, token), codec::encode_segment(&segment)));
                }
                records.push((keys::snapshot_key(&id, retained, token), codec::encode_segmented_snapshot(&snapshot)));
                head.snapshot = Some(SnapshotRef { version: retained, token });
                head.commits = Commits::repeated(token, data.version - retained);
                retained
            }
            None => 1,
        };
        for (index, (events, (at, invocation, traceparent))) in batches.into_iter().zip(at_of).enumerate() {
            let version = first + index as u64;
            if version >= first_written {
                let batch = Batch { version, token, at, invocation, traceparent, events };
                records.push((keys::batch_key(&id, version, token), codec::encode_batch(&batch)));
            }
        }
        match self.create_whole(&id, &head, records).await? {
            Some(session) => Ok(session),
            None => Err(invalid(
                "id".into(),
                format!("a session with id \"{id}\" already exists; pass {{ id }} to import it under another one"),
            )),
        }
    }
}
