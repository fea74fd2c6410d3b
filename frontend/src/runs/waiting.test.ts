import { describe, expect, it } from "vitest";

import type { Job } from "../api/types";
import { ordinal, waitingText } from "./waiting";

function waiting(fields: Partial<Job>): Job {
  return { status: "queued", queue: "cpu", position: null, ...fields } as Job;
}

describe("a waiting run's place and reason", () => {
  it("says its place in its queue and why it waits", () => {
    expect(waitingText(waiting({ position: 3, waiting_reason: "queue paused by an administrator" })))
      .toBe("3rd in the cpu queue — queue paused by an administrator");
  });

  it("says what it knows when the reason or the place is missing", () => {
    expect(waitingText(waiting({ position: 1, queue: "gpu" }))).toBe("1st in the gpu queue");
    expect(waitingText(waiting({ waiting_reason: "no worker serves the fpga queue" })))
      .toBe("no worker serves the fpga queue");
  });

  it("says nothing for a run that is not waiting", () => {
    expect(waitingText(waiting({ status: "running", position: 2, waiting_reason: "x" } as Partial<Job>))).toBe("");
  });

  it("writes English ordinals", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].map(ordinal)).toEqual(
      ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th"]);
  });
});
