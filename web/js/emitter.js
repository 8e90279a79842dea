// A minimal typed event emitter. `E` maps each event name to the type of its payload, so
// `on('joined', fn)` type-checks `fn` against the payload of `joined`.

/**
 * @template {Record<string, any>} E
 */
export class Emitter {
  constructor() {
    /** @type {Map<keyof E, Set<(payload: any) => void>>} */
    this.listeners = new Map();
  }

  /**
   * Registers a listener; returns a function that removes it.
   * @template {keyof E} K
   * @param {K} type
   * @param {(payload: E[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Calls every listener of `type`. A throwing listener is reported and does not stop the
   * others: one broken view must not break the call.
   * @template {keyof E} K
   * @param {K} type
   * @param {E[K]} payload
   */
  emit(type, payload) {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (err) {
        console.error(`hearth: listener for "${String(type)}" failed`, err);
      }
    }
  }
}
