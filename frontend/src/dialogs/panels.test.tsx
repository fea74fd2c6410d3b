import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("../store/session", () => ({
  save: vi.fn(), reloadLatest: vi.fn(), forkLocal: vi.fn(), restore: vi.fn(), forkShared: vi.fn(), rename: vi.fn(),
  keepForClaim: vi.fn(),
}));

import { api } from "../api/client";
import type { GraphDocument, Job, Share, Version } from "../api/types";
import { useEditor } from "../store/editor";
import * as session from "../store/session";
import { Dialogs } from "./Dialogs";
import { shortcutGroups } from "./ShortcutsDialog";
import { button, click, dialogName, flush, type Rendered, render } from "./testing";

const doc: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "tiny-mlp",
  nodes: [{ id: "x", type: "Input", params: { shape: [64] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
};
const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
const initial = useEditor.getState();
let view: Rendered | null = null;

beforeEach(() => {
  useEditor.setState(initial, true);
  vi.restoreAllMocks();
});
afterEach(() => {
  view?.unmount();
  view = null;
  vi.unstubAllGlobals();
});

const dialog = () => document.querySelector<HTMLElement>('[role="dialog"]')!;

async function open(which: NonNullable<ReturnType<typeof useEditor.getState>["dialog"]>, saved = true) {
  useEditor.getState().load(doc, saved ? { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: doc } : { graph: null });
  useEditor.getState().openDialog(which);
  view = await render(<Dialogs />);
  await flush();
}

describe("Share dialog", () => {
  const old: Share = { id: 1, prefix: "Rt-PYZTl", version: null, created_at: ago(60 * 24 * 3), revoked_at: null };

  it("lists links, creates one showing its full URL once, copies and revokes", async () => {
    vi.spyOn(api, "shares").mockResolvedValue([old]);
    vi.spyOn(api, "jobs").mockResolvedValue([]);
    const share = vi.spyOn(api, "share").mockResolvedValue({
      id: 2, prefix: "abcdefgh", version: 2, created_at: ago(0), revoked_at: null,
      token: "abcdefghTOKEN", url: "http://127.0.0.1:8000/s/abcdefghTOKEN",
    });
    const revoke = vi.spyOn(api, "revokeShare").mockResolvedValue(undefined);
    const writeText = vi.fn().mockResolvedValue(undefined);
    vi.stubGlobal("navigator", { ...navigator, platform: "Linux x86_64", clipboard: { writeText } });
    await open("share");

    expect(dialogName(dialog())).toBe("Share");
    let rows = dialog().querySelectorAll('[data-testid="share-link"]');
    expect(rows).toHaveLength(1);
    expect(rows[0].textContent).toContain("Rt-PYZTl…");
    expect(rows[0].textContent).toContain("the full link was shown when it was made");
    expect(rows[0].textContent).toContain("created 3 days ago");

    await click(dialog().querySelector('input[value="pinned"]'));
    await click(button(dialog(), "Create link"));
    expect(share).toHaveBeenCalledWith(7, 2);
    rows = dialog().querySelectorAll('[data-testid="share-link"]');
    expect(rows).toHaveLength(2);
    const url = rows[0].querySelector<HTMLInputElement>("input[readonly]")!;
    expect(url.value).toBe("http://127.0.0.1:8000/s/abcdefghTOKEN");
    expect(rows[0].textContent).toContain("pinned to v2");

    await click(button(rows[0], "Copy"));
    expect(writeText).toHaveBeenCalledWith("http://127.0.0.1:8000/s/abcdefghTOKEN");
    expect(button(rows[0], "Copied")).toBeTruthy();

    await click(button(rows[1], "Revoke"));
    await flush();
    expect(revoke).toHaveBeenCalledWith(7, 1);
    rows = dialog().querySelectorAll('[data-testid="share-link"]');
    expect(rows[1].getAttribute("data-state")).toBe("revoked");
    expect(rows[1].textContent).toContain("revoked just now");
    expect(button(rows[1], "Revoke")).toBeUndefined();
  });

  it("says visitors need an account to fork, as the shared page does", async () => {
    vi.spyOn(api, "shares").mockResolvedValue([]);
    vi.spyOn(api, "jobs").mockResolvedValue([]);
    await open("share");
    expect(dialog().textContent).toContain("To fork it (a copy of their own to edit), they log in or sign up.");
    expect(dialog().textContent).not.toContain("no account needed");
  });

  it("lists the finished runs, each with a switch that publishes it to the links", async () => {
    const run = (id: number, status: Job["status"], published: boolean) => ({
      id, graph: 7, graph_name: "tiny-mlp", version: 2, kind: "train", dataset: "digits", upload: null,
      dataset_options: {}, config: {}, queue: "cpu", time_limit: 60, status, step: 10, total_steps: 10,
      position: null, waiting_reason: "", priority: 0, retry_of: null, attempts: 1, device: "cpu", worker: "w",
      error: "", cancel_requested: false, published, last_seq: 3, metrics: {}, nonfinite: {}, downloads: [],
      download_errors: {}, admin_actions: [], created_at: ago(5),
      started_at: null, finished_at: null, heartbeat_at: null, weights_of: null, result: null,
    }) as Job;
    vi.spyOn(api, "shares").mockResolvedValue([]);
    const jobs = vi.spyOn(api, "jobs").mockResolvedValue([run(9, "running", false), run(8, "succeeded", false), run(6, "failed", true)]);
    const publish = vi.spyOn(api, "publishJob").mockImplementation(async (id, published) => run(id, "succeeded", published));
    await open("share");
    expect(jobs).toHaveBeenCalledWith(7);
    const rows = () => Array.from(dialog().querySelectorAll('[data-testid="share-run"]'));
    expect(rows().map((r) => r.getAttribute("data-run"))).toEqual(["8", "6"]); // not the running one
    const toggle = (id: number) => dialog().querySelector<HTMLInputElement>(`[data-testid="publish-run"][data-run="${id}"]`)!;
    expect(toggle(8).checked).toBe(false);
    expect(toggle(6).checked).toBe(true);
    await click(toggle(8));
    await flush();
    expect(publish).toHaveBeenCalledWith(8, true);
    expect(toggle(8).checked).toBe(true);
  });

  it("asks to save a never-saved model first", async () => {
    const shares = vi.spyOn(api, "shares");
    await open("share", false);
    expect(shares).not.toHaveBeenCalled();
    expect(dialog().textContent).toContain("has not been saved yet");
    await click(button(dialog(), "Save"));
    expect(useEditor.getState().dialog).toBe("save");
  });
});

describe("Versions dialog", () => {
  const versions: Version[] = [
    { number: 1, author: "ada", message: "first", restored_from: null, content_hash: "a", initial_weights: false, created_at: ago(120) },
    { number: 2, author: "bob", message: "", restored_from: 1, content_hash: "b", initial_weights: false, created_at: ago(2) },
  ];

  it("lists versions newest first, opens one, and restores (asking first when there are unsaved changes)", async () => {
    vi.spyOn(api, "versions").mockResolvedValue(versions);
    vi.spyOn(api, "version").mockResolvedValue({ ...versions[0], document: doc });
    vi.mocked(session.restore).mockResolvedValue(undefined);
    await open("versions");
    const rows = dialog().querySelectorAll('[data-testid="version"]');
    expect([...rows].map((r) => r.getAttribute("data-version"))).toEqual(["2", "1"]);
    expect(rows[0].textContent).toContain("current");
    expect(rows[0].textContent).toContain("restored from v1");
    expect(rows[0].textContent).toContain("bob");
    expect(rows[1].textContent).toContain("2 h ago");

    await click(button(rows[1], "Open"));
    await flush();
    expect(dialog().querySelector('[data-testid="version-detail"]')!.textContent).toContain("2 nodes");

    await act(async () => useEditor.getState().setName("edited"));
    await click(button(rows[1], "Restore"));
    expect(session.restore).not.toHaveBeenCalled();
    await click(button(dialog(), "Discard changes and restore"));
    expect(session.restore).toHaveBeenCalledWith(1);
    expect(useEditor.getState().dialog).toBeNull();
  });
});

describe("Code panel", () => {
  it("fetches the saved version's PyTorch, highlights it, offers downloads and says when it is stale", async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response("class M(nn.Module):\n    # hi\n    x = 64\n", { status: 200 }));
    vi.stubGlobal("fetch", fetchMock);
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: doc });
    useEditor.getState().setName("edited");
    useEditor.getState().openDialog("code");
    view = await render(<Dialogs />);
    await flush();
    expect(fetchMock.mock.calls[0][0]).toBe("/api/graphs/7/download?format=pytorch&version=2");
    const pre = dialog().querySelector("pre")!;
    expect(pre.textContent).toBe("class M(nn.Module):\n    # hi\n    x = 64\n");
    expect(pre.querySelector(".tok-kw")!.textContent).toBe("class");
    expect(pre.querySelector(".tok-com")!.textContent).toBe("# hi");
    expect(pre.querySelector(".tok-num")!.textContent).toBe("64");
    const hrefs = [...dialog().querySelectorAll("a")].map((a) => a.getAttribute("href"));
    expect(hrefs).toEqual([
      "/api/graphs/7/download?format=json&version=2",
      "/api/graphs/7/download?format=pytorch&version=2",
      "/api/graphs/7/download?format=onnx&version=2",
    ]);
    expect(dialog().textContent).toContain("saved version v2");
    await click(button(dialog(), "Save first"));
    expect(useEditor.getState().dialog).toBe("save");
  });

  it("uses the share token in a shared view", async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response("x = 1\n", { status: 200 }));
    vi.stubGlobal("fetch", fetchMock);
    useEditor.getState().load(doc, {
      graph: { id: 0, name: "tiny-mlp", head: 3 }, savedDoc: doc, readOnly: true, shareToken: "TOK", owner: "ada",
    });
    useEditor.getState().openDialog("code");
    view = await render(<Dialogs />);
    await flush();
    expect(fetchMock.mock.calls[0][0]).toBe("/api/shared/TOK/download?format=pytorch");
    expect(dialog().textContent).not.toContain("Save first");
  });
});

describe("Code panel while the server makes the file", () => {
  const preparing = () => new Response(JSON.stringify({
    error: "the PyTorch file is being prepared; try again in 1 s", retry_after: 1, busy: false,
  }), { status: 503, headers: { "Retry-After": "1" } });

  it("says it is preparing the PyTorch file, asks again after Retry-After, then shows the code", async () => {
    const fetchMock = vi.fn()
      .mockResolvedValueOnce(preparing())
      .mockResolvedValueOnce(new Response("x = 1\n", { status: 200 }));
    vi.stubGlobal("fetch", fetchMock);
    await open("code");
    expect(dialog().querySelector('[role="status"]')!.textContent).toBe(
      "Preparing the PyTorch file… (asking again in 1 s)");
    await act(async () => new Promise((resolve) => setTimeout(resolve, 1100)));
    await flush();
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(dialog().querySelector("pre")!.textContent).toBe("x = 1\n");
  });

  it("an ONNX link fetches until the file is ready, then saves it under the server's name", async () => {
    const onnx = "/api/graphs/7/download?format=onnx&version=2";
    const fetchMock = vi.fn(async (url: string) => url !== onnx ? new Response("x = 1\n")
      : fetchMock.mock.calls.filter(([u]) => u === onnx).length === 1 ? preparing()
        : new Response("bytes", { headers: { "Content-Disposition": 'attachment; filename="tiny-mlp-v2.onnx"' } }));
    vi.stubGlobal("fetch", fetchMock);
    Object.assign(URL, { createObjectURL: () => "blob:x", revokeObjectURL: () => {} }); // not in jsdom
    await open("code");
    const link = [...dialog().querySelectorAll("a")].find((a) => a.textContent === "ONNX")!;
    await click(link);
    const saved: string[] = []; // the save is a click on a link made for it
    const clickSpy = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      saved.push(this.download);
    });
    expect(link.textContent).toBe("Preparing ONNX…");
    expect(link.getAttribute("aria-busy")).toBe("true");
    await act(async () => new Promise((resolve) => setTimeout(resolve, 1100)));
    await flush();
    expect(saved).toEqual(["tiny-mlp-v2.onnx"]);
    expect(link.textContent).toBe("ONNX");
    clickSpy.mockRestore();
  });

  it("a link says why the server would not make the file", async () => {
    const fetchMock = vi.fn(async (url: string) => url.includes("onnx")
      ? new Response(JSON.stringify({ error: "exporting this model took longer than 60 s (SHIPYARD_EXPORT_SECONDS)", reason: "time" }), { status: 422 })
      : new Response("x = 1\n"));
    vi.stubGlobal("fetch", fetchMock);
    await open("code");
    const link = [...dialog().querySelectorAll("a")].find((a) => a.textContent === "ONNX")!;
    await click(link);
    await flush();
    expect(dialog().querySelector('.code-downloads [role="alert"]')!.textContent).toBe(
      "ONNX: exporting this model took longer than 60 s (SHIPYARD_EXPORT_SECONDS)");
  });
});

describe("Shortcuts", () => {
  it("says Cmd on macOS and Ctrl elsewhere", () => {
    const text = (mac: boolean) => JSON.stringify(shortcutGroups(mac));
    expect(text(true)).toContain('"Cmd","Z"');
    expect(text(true)).not.toContain('"Ctrl"');
    expect(text(false)).toContain('"Ctrl","Shift","Z"');
    expect(text(false)).toContain('"Ctrl","Y"');
  });
});
