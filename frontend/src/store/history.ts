// Undo history of documents. Documents are immutable, so a snapshot costs one reference;
// a gesture (a drag, typing into a field) becomes one entry however many updates it makes.

export interface History<T> {
  past: T[];
  future: T[];
  /** The value when the current gesture began; null outside a gesture. */
  gestureBase: T | null;
}

export const HISTORY_LIMIT = 300;

export function emptyHistory<T>(): History<T> {
  return { past: [], future: [], gestureBase: null };
}

/** After `current` was replaced by a new value: remember `current` (unless in a gesture). */
export function record<T>(history: History<T>, current: T): History<T> {
  if (history.gestureBase !== null) return history;
  const past = [...history.past, current];
  if (past.length > HISTORY_LIMIT) past.splice(0, past.length - HISTORY_LIMIT);
  return { past, future: [], gestureBase: null };
}

export function beginGesture<T>(history: History<T>, current: T): History<T> {
  return history.gestureBase !== null ? history : { ...history, gestureBase: current };
}

/** End a gesture: one entry for all of it, none if it changed nothing. */
export function endGesture<T>(history: History<T>, current: T): History<T> {
  const base = history.gestureBase;
  if (base === null) return history;
  const ended = { ...history, gestureBase: null };
  return base === current ? ended : record(ended, base);
}

export function undo<T>(history: History<T>, current: T): { history: History<T>; value: T } | null {
  const settled = endGesture(history, current);
  if (settled.past.length === 0) return null;
  const value = settled.past[settled.past.length - 1];
  return {
    value,
    history: { past: settled.past.slice(0, -1), future: [current, ...settled.future], gestureBase: null },
  };
}

export function redo<T>(history: History<T>, current: T): { history: History<T>; value: T } | null {
  if (history.future.length === 0) return null;
  const [value, ...future] = history.future;
  return { value, history: { past: [...history.past, current], future, gestureBase: null } };
}
