import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { runsStore } from "./store";
import { UploadForm } from "./UploadForm";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let container: HTMLElement;
let sent: FormData[];

const UPLOAD = {
  id: 12, name: "points.csv", kind: "csv", task: "classification", target: "", size: 400,
  summary: "40 rows, 2 features, 2 classes", source: "", licence: "", created_at: "2025-01-01T00:00:00Z",
};

function answer(status: number, body: unknown) {
  vi.stubGlobal("fetch", vi.fn(async (_: string, init: RequestInit = {}) => {
    sent.push(init.body as FormData);
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }));
}

const $ = <T extends Element = HTMLElement>(id: string) => container.querySelector<T>(`[data-testid="${id}"]`)!;

function type(input: HTMLInputElement, value: string) {
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!.call(input, value);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

async function fill(source: string, licence: string) {
  const file = new File(["a,b,label\n1,2,yes\n"], "points.csv", { type: "text/csv" });
  const input = $<HTMLInputElement>("upload-file");
  Object.defineProperty(input, "files", { value: [file], configurable: true });
  await act(async () => input.dispatchEvent(new Event("change", { bubbles: true })));
  await act(async () => type($<HTMLInputElement>("upload-source"), source));
  await act(async () => type($<HTMLInputElement>("upload-licence"), licence));
  await act(async () => $<HTMLButtonElement>("upload-submit").click());
  await act(async () => new Promise((r) => setTimeout(r, 10)));
}

beforeEach(() => {
  sent = [];
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  runsStore.setState({ uploads: [] });
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
  vi.unstubAllGlobals();
});

describe("the upload form", () => {
  it("sends the file with its source and licence, and hands the new upload on", async () => {
    answer(201, { ...UPLOAD, source: "https://example.org/p", licence: "CC0-1.0" });
    const onUploaded = vi.fn();
    await act(async () => root.render(<UploadForm onUploaded={onUploaded} />));
    await fill("  https://example.org/p ", "CC0-1.0");
    const form = sent[0];
    expect(form.get("source")).toBe("https://example.org/p");
    expect(form.get("licence")).toBe("CC0-1.0");
    expect(form.get("task")).toBe("classification");
    expect((form.get("file") as File).name).toBe("points.csv");
    expect(onUploaded).toHaveBeenCalledWith(expect.objectContaining({ id: 12, licence: "CC0-1.0" }));
    expect(runsStore.getState().uploads.map((u) => u.id)).toEqual([12]);
  });

  it("leaves out a source and licence not given (not declared)", async () => {
    answer(201, UPLOAD);
    await act(async () => root.render(<UploadForm onUploaded={() => {}} />));
    await fill("", "");
    expect(sent[0].has("source")).toBe(false);
    expect(sent[0].has("licence")).toBe(false);
  });

  it("shows the server's refusal of a source, naming the field", async () => {
    answer(400, { error: "some fields are not valid; see fields",
      fields: { source: ["the source looks like a web address but is not an http or https one; give an http(s) address, or words"] } });
    const onUploaded = vi.fn();
    await act(async () => root.render(<UploadForm onUploaded={onUploaded} />));
    await fill("javascript:alert(1)", "");
    expect($("upload-error").textContent).toBe(
      "source: the source looks like a web address but is not an http or https one; give an http(s) address, or words");
    expect(onUploaded).not.toHaveBeenCalled();
  });
});
