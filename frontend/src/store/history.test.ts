import { describe, expect, it } from "vitest";

import { HISTORY_LIMIT, beginGesture, emptyHistory, endGesture, record, redo, undo } from "./history";

describe("history", () => {
  it("undoes and redoes in order", () => {
    let h = emptyHistory<string>();
    h = record(h, "a"); // a → b
    h = record(h, "b"); // b → c
    const u1 = undo(h, "c")!;
    expect(u1.value).toBe("b");
    const u2 = undo(u1.history, u1.value)!;
    expect(u2.value).toBe("a");
    expect(undo(u2.history, u2.value)).toBeNull();
    const r1 = redo(u2.history, u2.value)!;
    expect(r1.value).toBe("b");
    const r2 = redo(r1.history, r1.value)!;
    expect(r2.value).toBe("c");
    expect(redo(r2.history, r2.value)).toBeNull();
  });

  it("forgets the redo branch after a new edit", () => {
    let h = record(emptyHistory<string>(), "a");
    const u = undo(h, "b")!;
    h = record(u.history, u.value);
    expect(h.future).toEqual([]);
  });

  it("makes one entry of a gesture, and none of a gesture that changed nothing", () => {
    let h = beginGesture(emptyHistory<string>(), "start");
    h = record(h, "start");
    h = record(h, "middle");
    h = endGesture(h, "end");
    expect(h.past).toEqual(["start"]);
    const idle = endGesture(beginGesture(emptyHistory<string>(), "same"), "same");
    expect(idle.past).toEqual([]);
  });

  it("undo during a gesture ends it first", () => {
    const h = beginGesture(emptyHistory<string>(), "before");
    const u = undo(h, "typing")!;
    expect(u.value).toBe("before");
    expect(u.history.future).toEqual(["typing"]);
  });

  it("keeps at most the limit", () => {
    let h = emptyHistory<number>();
    for (let i = 0; i < HISTORY_LIMIT + 10; i++) h = record(h, i);
    expect(h.past.length).toBe(HISTORY_LIMIT);
    expect(h.past[0]).toBe(10);
  });
});
