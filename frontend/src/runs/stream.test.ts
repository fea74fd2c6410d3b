import { describe, expect, it, vi } from "vitest";

import type { RunEvent } from "./events";
import { backfill, frameBatcher, followRun, jobSocketUrl, type Connection, type SocketLike } from "./stream";

/** A run's stored events and a /metrics endpoint over them, `pageSize` a page. */
class FakeServer {
  events: Record<string, unknown>[] = [];
  calls: number[] = [];
  failNext = 0;
  constructor(readonly pageSize = 3) {}

  add(n: number, extra: (seq: number) => Record<string, unknown> = () => ({})) {
    for (let i = 0; i < n; i++) {
      const seq = this.events.length + 1;
      this.events.push({ type: "metric", seq, step: seq * 10, time: 0, name: "train_loss", value: 1 / seq, ...extra(seq) });
    }
    return this.events.slice(-n);
  }

  end(status = "succeeded") {
    const seq = this.events.length + 1;
    const event = { type: "status", seq, step: 0, time: 0, status, total: 300, attempts: 1, device: "cpu", worker: "w", error: "" };
    this.events.push(event);
    return event;
  }

  get lastSeq() {
    return this.events.length;
  }

  fetchPage = async (since: number) => {
    this.calls.push(since);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("HTTP 502");
    }
    const rest = this.events.filter((e) => (e.seq as number) > since);
    return { events: rest.slice(0, this.pageSize), last_seq: this.lastSeq, more: rest.length > this.pageSize };
  };

  state(status = "running") {
    return JSON.stringify({ type: "state", job: { id: 1, status, last_seq: this.lastSeq }, last_seq: this.lastSeq });
  }
}

/** A socket the test drives: messages, drops and reconnections. */
class FakeSocket implements SocketLike {
  listeners: Record<string, ((event: never) => void)[]> = {};
  closed = false;
  addEventListener(type: string, listener: (event: never) => void) {
    (this.listeners[type] ??= []).push(listener);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, event: unknown) {
    for (const l of this.listeners[type] ?? []) (l as (e: unknown) => void)(event);
  }
  send(message: unknown) {
    this.emit("message", { data: typeof message === "string" ? message : JSON.stringify(message) });
  }
}

function setup(server: FakeServer, since = 0) {
  const socket = new FakeSocket();
  const delivered: number[] = [];
  const batches: RunEvent[][] = [];
  const connection: Connection[] = [];
  const errors: [string, boolean][] = [];
  const onEnd = vi.fn();
  const follower = followRun({
    jobId: 1,
    since,
    fetchPage: server.fetchPage,
    connect: () => socket,
    onEvents: (events) => {
      batches.push(events);
      delivered.push(...events.map((e) => e.seq));
    },
    onConnection: (c) => connection.push(c),
    onError: (message, fatal) => errors.push([message, fatal]),
    onEnd,
    retryDelays: [5],
  });
  return { socket, delivered, batches, connection, errors, onEnd, follower };
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe("following a run", () => {
  it("backfills after `state`, in pages, then takes live events", async () => {
    const server = new FakeServer(3);
    server.add(7);
    const { socket, delivered, follower } = setup(server);
    socket.send(server.state());
    await follower.idle();
    expect(server.calls).toEqual([0, 3, 6]); // three pages
    expect(delivered).toEqual(range(1, 7));
    socket.send(server.add(1)[0]);
    await follower.idle();
    expect(delivered).toEqual(range(1, 8));
  });

  it("skips live events the backfill already gave (stored while connecting)", async () => {
    const server = new FakeServer(100);
    server.add(5);
    const { socket, delivered, follower } = setup(server);
    socket.send(server.state());
    // events 4 and 5 were stored after the server read the state but published later
    socket.send(server.events[3]);
    socket.send(server.events[4]);
    socket.send(server.add(1)[0]);
    await follower.idle();
    expect(delivered).toEqual(range(1, 6));
  });

  it("fills a gap over REST, asking from the last seq held", async () => {
    const server = new FakeServer(100);
    server.add(6);
    const { socket, delivered, follower } = setup(server);
    socket.send(server.state());
    await follower.idle();
    server.calls = [];
    server.add(2); // 7 and 8 never reach this client live
    socket.send(server.add(1)[0]); // 9
    await follower.idle();
    expect(server.calls).toEqual([6]);
    expect(delivered).toEqual(range(1, 9));
  });

  it("fetches everything after the last seq after a reconnect", async () => {
    const server = new FakeServer(2);
    server.add(4);
    const { socket, delivered, connection, follower } = setup(server);
    socket.send(server.state());
    await follower.idle();
    socket.emit("close", { code: 1006 });
    expect(connection.at(-1)).toBe("reconnecting");
    server.add(5); // 5..9 happen while disconnected
    server.calls = [];
    socket.emit("open", {});
    socket.send(server.state());
    socket.send(server.events[8]); // 9 again, live
    socket.send(server.add(1)[0]); // 10
    await follower.idle();
    expect(server.calls[0]).toBe(4);
    expect(delivered).toEqual(range(1, 10));
    expect(connection.at(-1)).toBe("live");
  });

  it("starts from what the caller already holds", async () => {
    const server = new FakeServer(100);
    server.add(5);
    const { socket, delivered, follower } = setup(server, 3);
    socket.send(server.state());
    await follower.idle();
    expect(server.calls).toEqual([3]);
    expect(delivered).toEqual([4, 5]);
  });

  it("stops after a final backfill when the run ends", async () => {
    const server = new FakeServer(100);
    server.add(3);
    const { socket, delivered, follower, onEnd, connection } = setup(server);
    socket.send(server.state());
    await follower.idle();
    server.calls = [];
    socket.send(server.end("succeeded"));
    await follower.idle();
    expect(delivered).toEqual(range(1, 4));
    expect(server.calls).toEqual([4]); // the final backfill
    expect(onEnd).toHaveBeenCalledOnce();
    expect(socket.closed).toBe(true);
    expect(connection.at(-1)).toBe("ended");
    socket.send({ type: "metric", seq: 5, step: 0, time: 0, name: "x", value: 1 });
    await follower.idle();
    expect(delivered).toEqual(range(1, 4));
  });

  it("stops at once for a run that had ended before it connected", async () => {
    const server = new FakeServer(2);
    server.add(3);
    server.end("failed");
    const { socket, delivered, follower, onEnd } = setup(server);
    socket.send(server.state("failed"));
    await follower.idle();
    expect(delivered).toEqual(range(1, 4));
    expect(onEnd).toHaveBeenCalledOnce();
    expect(socket.closed).toBe(true);
  });

  it("gives up on an error message (no such run) without reconnecting", async () => {
    const server = new FakeServer();
    const { socket, errors, follower } = setup(server);
    socket.send({ type: "error", error: "no such run" });
    await follower.idle();
    expect(errors).toEqual([["no such run", true]]);
    expect(socket.closed).toBe(true);
  });

  it("treats close code 4401 as final", async () => {
    const server = new FakeServer();
    const { socket, errors } = setup(server);
    socket.emit("close", { code: 4401 });
    expect(errors[0][1]).toBe(true);
    expect(socket.closed).toBe(true);
  });

  it("treats close code 4403 (access withdrawn) as final, without reconnecting", async () => {
    const server = new FakeServer();
    const { socket, errors } = setup(server);
    socket.emit("close", { code: 4403 });
    expect(errors[0]).toEqual(["you may no longer watch this run: its link or your token was revoked, or it was unpublished", true]);
    expect(socket.closed).toBe(true);
  });

  it("retries a failed gap fill and loses nothing", async () => {
    const server = new FakeServer(100);
    server.add(3);
    const { socket, delivered, errors, follower } = setup(server);
    socket.send(server.state());
    await follower.idle();
    server.add(2); // 4, 5 missed
    server.failNext = 1;
    socket.send(server.add(1)[0]); // 6: the gap fill fails
    await follower.idle();
    expect(delivered).toEqual(range(1, 3));
    expect(errors.length).toBe(1);
    expect(errors[0][1]).toBe(false);
    await new Promise((r) => setTimeout(r, 20)); // the retry
    await follower.idle();
    expect(delivered).toEqual(range(1, 6));
  });

  it("delivers every event exactly once, in order, under shuffled duplicates", async () => {
    const server = new FakeServer(4);
    server.add(30);
    const { socket, delivered, follower } = setup(server);
    socket.send(server.state());
    // live events arrive with repeats, some missing, out of order within a batch
    for (const i of [2, 2, 10, 11, 9, 20, 29, 3, 29, 25]) socket.send(server.events[i]);
    await follower.idle();
    expect(delivered).toEqual(range(1, 30));
  });
});

describe("backfill", () => {
  it("stops at `until` once reached", async () => {
    const server = new FakeServer(2);
    server.add(10);
    const got: number[] = [];
    const last = await backfill(server.fetchPage, 2, (events) => got.push(...events.map((e) => e.seq)), 5);
    expect(got).toEqual([3, 4, 5, 6]);
    expect(last).toBe(6);
    expect(server.calls).toEqual([2, 4]);
  });
});

describe("jobSocketUrl", () => {
  it("uses wss on https and adds the share token", () => {
    expect(jobSocketUrl(7, null, { protocol: "http:", host: "localhost:8000" })).toBe("ws://localhost:8000/ws/jobs/7/");
    expect(jobSocketUrl(7, "a b", { protocol: "https:", host: "x.org" })).toBe("wss://x.org/ws/jobs/7/?share=a%20b");
  });
});

describe("frameBatcher", () => {
  it("hands over once per frame, in order", () => {
    const frames: (() => void)[] = [];
    const flushed: number[][] = [];
    const batch = frameBatcher<number>((items) => flushed.push(items), (cb) => {
      frames.push(cb);
      return () => frames.splice(frames.indexOf(cb), 1);
    });
    batch.push([1, 2]);
    batch.push([3]);
    expect(frames).toHaveLength(1);
    expect(flushed).toEqual([]);
    frames.shift()!();
    expect(flushed).toEqual([[1, 2, 3]]);
    batch.push([4]);
    batch.flush();
    expect(flushed).toEqual([[1, 2, 3], [4]]);
    expect(frames).toHaveLength(0);
  });
});
