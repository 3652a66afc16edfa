// One FIFO queue per key: a task starts after every task queued before it under the same key has
// settled, whether it resolved or rejected. The framework drop-ins queue the writes of one session
// (their turns must not interleave within a process: a second begin would only meet the first one's
// lease); durableObjectKv queues the writes of one storage object, whose compare-and-set is a read
// then a write.

export class SerialQueues {
  /** key -> the settling of the last task queued under it; removed once that key's queue is empty. */
  #tails = new Map();

  /** Runs `task()` after the tasks already queued under `key`; resolves or rejects as it does. */
  run(key, task) {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}
