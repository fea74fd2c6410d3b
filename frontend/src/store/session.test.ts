// The local draft that survives a reload. The API is spied on (vi.spyOn) because Vitest has
// no server; what is checked is what the editor keeps in this browser, and when.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api } from "../api/client";
import type { BlockCatalog, GraphDocument } from "../api/types";
import catalog from "../test/catalog.json";
import { useEditor } from "./editor";
import { type Boot, draftKey, followDrafts, open, readDraft } from "./session";

const drawing: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "drawn just now",
  nodes: [{ id: "x", type: "Input", params: { shape: [8] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
};
const boot: Boot = {
  graphId: null, starter: null, shareToken: null, user: null,
  loginUrl: "/accounts/login/", signupUrl: "/accounts/signup/", report: null,
};
const key = draftKey(boot);
const initial = useEditor.getState();
let stop: () => void = () => {};

beforeEach(async () => {
  localStorage.clear();
  useEditor.setState(initial, true);
  vi.useFakeTimers();
  vi.spyOn(api, "blocks").mockResolvedValue(catalog as unknown as BlockCatalog);
  vi.spyOn(api, "starters").mockResolvedValue([]);
  await open(boot);
  stop = followDrafts();
});
afterEach(() => {
  stop();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const draw = () => useEditor.getState().edit(() => drawing);

describe("followDrafts", () => {
  it("keeps an edit in this browser once the canvas rests", () => {
    draw();
    expect(readDraft(key)).toBeNull();
    vi.advanceTimersByTime(400);
    expect(readDraft(key)?.doc).toEqual(drawing);
  });

  it("keeps the last edit at once when the page is left before the canvas rests", () => {
    draw();
    window.dispatchEvent(new Event("pagehide"));
    expect(readDraft(key)?.doc).toEqual(drawing);
  });

  it("leaves nothing behind when the page is left with nothing unsaved to keep", () => {
    window.dispatchEvent(new Event("pagehide"));
    expect(readDraft(key)).toBeNull();
  });
});
