// The one agent-session Session a drop-in writes for a thread or session: opened on first use, and
// opened again when it was deleted since (deleteThread or deleteSession through another object, or
// SessionStore.delete in another process). The handle keeps no state of its own: the store keeps one
// view per session id, shared by every Session object of that id, and `refresh()` / `begin()` bring it
// to the latest commit, so reads through a handle see what other stores and processes committed.

/** Whether `error` is an agent-session error with one of `codes` (its stable `.code`, never its text). */
export function hasCode(error, ...codes) {
  return error !== null && typeof error === "object" && codes.includes(error.code);
}

/** How many times `begin` opens a session deleted under it again before it reports `NotFoundError`. */
const BEGIN_ATTEMPTS = 4;

export class SessionHandle {
  #store;
  #id;
  #openOptions;
  #gone;
  /** `{ promise, create }`: the Session being opened or open, so that concurrent first uses open it once. */
  #opening = null;
  /** How many times this handle has dropped its Session (see `stateId`). */
  generation = 0;

  /**
   * @param store the SessionStore
   * @param id the session id; undefined: the store picks a random one at the first open, kept after
   * @param options `open`: OpenOptions for when the handle creates the session; `restartExpired`: an
   *   expired session counts as gone (reads find nothing, begin deletes it and starts a new one)
   *   instead of failing with SessionExpiredError
   */
  constructor(store, id, { open = {}, restartExpired = false } = {}) {
    this.#store = store;
    this.#id = id;
    this.#openOptions = { ...open, create: true };
    this.#gone = restartExpired ? ["NOT_FOUND", "SESSION_EXPIRED"] : ["NOT_FOUND"];
  }

  /**
   * What names the state of `session` (a Session or an Invocation's session) at `version`. A session
   * deleted and created again, by this handle or by another store, starts over at version 0: a
   * version names a state only with the session's creation time (and this handle's generation, for
   * a session created again within the same millisecond through it).
   */
  stateId(session, version = session.version) {
    return `${this.generation}:${session.createdAt}:${version}`;
  }

  /** The Session, created when absent; with `create: false`, undefined when it does not exist. */
  async session({ create = true } = {}, retried = false) {
    if (this.#opening === null) {
      const promise = this.#store.open(this.#id, create ? this.#openOptions : { create: false });
      const opening = { promise, create };
      this.#opening = opening;
      promise.then(
        (session) => (this.#id = session.id),
        () => {
          if (this.#opening === opening) this.#opening = null;
        },
      );
    }
    const opening = this.#opening;
    try {
      return await opening.promise;
    } catch (error) {
      if (!hasCode(error, "NOT_FOUND")) throw error;
      if (this.#opening === opening) this.#opening = null;
      if (!create) return undefined;
      // This call joined an open with `create: false`, or the open read the session as another
      // store deleted it: open again, creating.
      if (!opening.create || !retried) return this.session({ create }, true);
      throw error;
    }
  }

  /**
   * The Session brought to its latest commit, or undefined when it does not exist (or was deleted
   * since it was opened). With `create: false` (the default) a missing session is not created.
   */
  async refreshed({ create = false } = {}) {
    // Opening reads the head already: a Session this call opens needs no refresh.
    const opens = this.#opening === null;
    const session = await this.session({ create });
    if (session === undefined || opens) return session;
    try {
      return await session.refresh();
    } catch (error) {
      if (!hasCode(error, ...this.#gone)) throw error;
      this.forget();
      return undefined;
    }
  }

  /**
   * `session.begin(options)`; a session deleted since it was opened is created again, and begun once
   * more (a few times, should deletes keep racing the begin). With `create: false`, undefined instead
   * of creating a session that does not exist.
   */
  async begin(options, { create = true } = {}) {
    for (let attempt = 0; ; attempt++) {
      const session = await this.session({ create });
      if (session === undefined) return undefined;
      try {
        return await session.begin(options);
      } catch (error) {
        if (attempt >= BEGIN_ATTEMPTS - 1 || !hasCode(error, ...this.#gone)) throw error;
        // An expired session still exists, and would refuse again: delete it to start a new one.
        if (hasCode(error, "SESSION_EXPIRED")) await this.#store.delete(this.#id);
        this.forget();
      }
    }
  }

  /** Drops the Session: the next use opens it again (after a delete, say). */
  forget() {
    this.#opening = null;
    this.generation++;
  }
}
