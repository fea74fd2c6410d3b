// Following a run live, as docs/runs.md "Sequence numbers and backfill" says: connect the
// WebSocket, read `state`, read /metrics from the last seq held, then take live events,
// skipping any seq already held and fetching any gap over REST. After a reconnect the
// server sends `state` again, and everything after the last seq held is fetched. When the
// run ends, one final backfill, then the socket is closed.
//
// The socket and the REST call are injectable, so all of this runs in unit tests.

import { WebSocket as ReconnectingWebSocket } from "partysocket";

import { api } from "../api/client";
import type { Job } from "../api/types";
import { findGap, isEnded, num, obj, toRunEvent, toRunEvents, toRunJob, type RunEvent } from "./events";

export type FetchPage = (since: number) => Promise<unknown>;

/** The socket as the follower uses it (partysocket's reconnecting WebSocket, or a fake). */
export interface SocketLike {
  addEventListener(type: "open" | "message" | "close", listener: (event: never) => void): void;
  close(code?: number, reason?: string): void;
}

export type Connection = "connecting" | "live" | "reconnecting" | "ended" | "closed";

/** Close codes after which reconnecting cannot help (docs/runs.md "Following a run"). */
const FATAL_CLOSE: Record<number, string> = {
  4401: "log in to follow this run",
  4403: "you may no longer watch this run: its link or your token was revoked, or it was unpublished",
  4404: "no such run",
};

/**
 * Every stored event after `since`, page by page (`more`), handing each page to `onPage`
 * as it comes. Stops once `until` is reached, or when the server has no more. Returns the
 * last seq received (or `since`).
 */
export async function backfill(
  fetchPage: FetchPage,
  since: number,
  onPage: (events: RunEvent[]) => void,
  until = Infinity,
): Promise<number> {
  let cursor = since;
  for (;;) {
    const page = obj(await fetchPage(cursor));
    const events = toRunEvents(page.events).filter((e) => e.seq > cursor);
    if (events.length) {
      onPage(events);
      cursor = events[events.length - 1].seq;
    }
    if (page.more !== true || events.length === 0 || cursor >= until) return cursor;
  }
}

export function jobSocketUrl(jobId: number, share?: string | null, loc: Pick<Location, "protocol" | "host"> = location): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws/jobs/${jobId}/${share ? `?share=${encodeURIComponent(share)}` : ""}`;
}

function connectSocket(url: string): SocketLike {
  return new ReconnectingWebSocket(url, undefined, {
    minReconnectionDelay: 500 + Math.random() * 1000,
    maxReconnectionDelay: 15_000,
    shouldReconnectOnClose: (event) => !(event.code in FATAL_CLOSE),
  }) as unknown as SocketLike;
}

export interface FollowOptions {
  jobId: number;
  share?: string | null;
  /** events 1..since are held already and are not delivered again */
  since?: number;
  /** new events, contiguous and in seq order, each exactly once */
  onEvents(events: RunEvent[]): void;
  /** the run as the server sees it, on each (re)connection */
  onState?(job: Job, lastSeq: number): void;
  onConnection?(state: Connection): void;
  /** `fatal`: following stopped (no such run, not logged in); otherwise it retries */
  onError?(message: string, fatal: boolean): void;
  /** the run ended and every event up to its end was delivered */
  onEnd?(): void;
  fetchPage?: FetchPage;
  connect?: (url: string) => SocketLike;
  url?: string;
  /** waits before retrying a failed backfill, in ms; the last one repeats */
  retryDelays?: number[];
}

export interface Follower {
  stop(): void;
  /** resolves once every message received so far has been handled (for tests) */
  idle(): Promise<void>;
  /** the last seq delivered */
  readonly held: number;
}

export function followRun(options: FollowOptions): Follower {
  const fetchPage: FetchPage = options.fetchPage
    ?? ((since) => api.events(options.jobId, since, options.share ?? undefined));
  const delays = options.retryDelays ?? [1000, 2000, 5000, 10_000];
  let held = options.since ?? 0;
  let stopped = false;
  let ending = false;
  let ended = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let retries = 0;
  let chain: Promise<void> = Promise.resolve();

  const enqueue = (task: () => Promise<void>) => {
    chain = chain.then(task).catch((error: unknown) => {
      options.onError?.(error instanceof Error ? error.message : String(error), false);
    });
  };

  /** Delivers what continues the held sequence; notes the end of the run. */
  const deliver = (events: RunEvent[]) => {
    const fresh: RunEvent[] = [];
    for (const e of events) {
      if (e.seq <= held) continue;
      if (e.seq !== held + 1) break;
      fresh.push(e);
      held = e.seq;
      if (e.type === "status" && isEnded(e.status)) ending = true;
    }
    if (fresh.length && !stopped) options.onEvents(fresh);
  };

  const scheduleRetry = () => {
    if (retryTimer !== undefined || stopped) return;
    const delay = delays[Math.min(retries++, delays.length - 1)];
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      enqueue(async () => {
        if ((await catchUp()) && ending) end();
      });
    }, delay);
  };

  /** Fetches and delivers everything after `held` (up to `until`); false if it failed. */
  const catchUp = async (until = Infinity): Promise<boolean> => {
    if (stopped) return false;
    try {
      await backfill(fetchPage, held, deliver, until);
      retries = 0;
      return true;
    } catch (error) {
      if (!stopped) {
        options.onError?.(`could not read the run's events: ${(error as Error).message}`, false);
        scheduleRetry();
      }
      return false;
    }
  };

  const end = () => {
    if (ended || stopped) return;
    ended = true;
    options.onConnection?.("ended");
    stop();
    options.onEnd?.();
  };

  const handle = async (data: unknown) => {
    if (stopped) return;
    let message: Record<string, unknown>;
    try {
      message = obj(typeof data === "string" ? JSON.parse(data) : data);
    } catch {
      return;
    }
    if (message.type === "error") {
      options.onError?.(typeof message.error === "string" ? message.error : "the server refused", true);
      stop();
      return;
    }
    if (message.type === "state") {
      const job = toRunJob(message.job);
      options.onState?.(job, num(message.last_seq));
      options.onConnection?.("live");
      if (isEnded(job.status)) ending = true;
      if ((await catchUp()) && ending) end();
      return;
    }
    const event = toRunEvent(message);
    if (!event || event.seq <= held) return;
    const gap = findGap(held, event.seq);
    if (gap) {
      // A failed fill drops this event: the retry (or the next event's gap) brings it.
      if (!(await catchUp(gap.until))) return;
      if (event.seq <= held) {
        if (ending) end();
        return;
      }
      if (held < gap.until) held = event.seq - 1; // the server has none of them: go on
    }
    deliver([event]);
    if (ending && (await catchUp())) end(); // the final backfill
  };

  const socket = (options.connect ?? connectSocket)(options.url ?? jobSocketUrl(options.jobId, options.share));
  options.onConnection?.("connecting");
  socket.addEventListener("message", ((event: MessageEvent) => {
    const data = event.data;
    enqueue(() => handle(data));
  }) as (event: never) => void);
  socket.addEventListener("close", ((event: CloseEvent) => {
    if (stopped) return;
    const fatal = FATAL_CLOSE[event.code];
    if (fatal) {
      options.onError?.(fatal, true);
      stop();
    } else {
      options.onConnection?.("reconnecting");
    }
  }) as (event: never) => void);

  function stop() {
    if (stopped) return;
    stopped = true;
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    socket.close();
    if (!ended) options.onConnection?.("closed");
  }

  return {
    stop,
    idle: async () => {
      // Tasks may enqueue more tasks; wait until the chain stops growing.
      let seen: Promise<void> | null = null;
      while (seen !== chain) {
        seen = chain;
        await chain;
      }
    },
    get held() {
      return held;
    },
  };
}

/**
 * Collects items and hands them over at most once per animation frame, so a flood of events
 * re-renders the charts once a frame. `flush()` hands over at once.
 */
export function frameBatcher<T>(
  flush: (items: T[]) => void,
  schedule: (callback: () => void) => () => void = nextFrame,
): { push(items: readonly T[]): void; flush(): void; cancel(): void } {
  let pending: T[] = [];
  let scheduled = false;
  let cancelScheduled: (() => void) | null = null;
  const unschedule = () => {
    if (scheduled) cancelScheduled?.();
    scheduled = false;
    cancelScheduled = null;
  };
  const run = () => {
    scheduled = false;
    cancelScheduled = null;
    if (!pending.length) return;
    const items = pending;
    pending = [];
    flush(items);
  };
  return {
    push(items) {
      if (!items.length) return;
      for (const item of items) pending.push(item);
      if (scheduled) return;
      scheduled = true;
      const cancel = schedule(run);
      if (scheduled) cancelScheduled = cancel; // a scheduler may run at once
    },
    flush() {
      unschedule();
      run();
    },
    cancel() {
      unschedule();
      pending = [];
    },
  };
}

function nextFrame(callback: () => void): () => void {
  if (typeof requestAnimationFrame === "function") {
    const id = requestAnimationFrame(() => callback());
    return () => cancelAnimationFrame(id);
  }
  const id = setTimeout(callback, 16);
  return () => clearTimeout(id);
}
