import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api } from "../api/client";
import { useEditor } from "../store/editor";
import { Dialogs } from "./Dialogs";
import { button, click, flush, type Rendered, render, type } from "./testing";

interface Sent {
  method: string;
  path: string;
  body: BodyInit | null | undefined;
  headers: Record<string, string>;
}

const initial = useEditor.getState();
let view: Rendered | null = null;
let sent: Sent[] = [];
let assign: ReturnType<typeof vi.spyOn>;

function answer(status: number, body: unknown) {
  sent = [];
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    sent.push({ method: init.method ?? "GET", path: input, body: init.body,
      headers: (init.headers ?? {}) as Record<string, string> });
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }));
}

beforeEach(() => {
  useEditor.setState(initial, true);
  assign = vi.spyOn(window.location, "assign").mockImplementation(() => undefined);
});

afterEach(() => {
  view?.unmount();
  view = null;
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const onnxFile = () => new File([new Uint8Array([8, 7, 18, 0])], "digits.onnx", { type: "application/octet-stream" });

async function choose(dialog: Element, file: File) {
  const input = dialog.querySelector('input[type="file"]') as HTMLInputElement;
  Object.defineProperty(input, "files", { value: [file], configurable: true });
  await act(async () => {
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

describe("api.importOnnx", () => {
  it("posts the file and name as multipart form data, without a JSON content type", async () => {
    answer(201, { id: 12 });
    const created = await api.importOnnx(onnxFile(), "Digits");
    expect(created).toEqual({ id: 12 });
    expect(sent).toHaveLength(1);
    expect(sent[0].method).toBe("POST");
    expect(sent[0].path).toBe("/api/graphs/import");
    expect(sent[0].headers["Content-Type"]).toBeUndefined();
    const form = sent[0].body as FormData;
    expect(form).toBeInstanceOf(FormData);
    expect((form.get("file") as File).name).toBe("digits.onnx");
    expect(form.get("name")).toBe("Digits");
  });
});

describe("Import ONNX dialog", () => {
  it("opens from the top bar's action, uploads the file and opens the new model", async () => {
    useEditor.getState().openDialog("import");
    answer(201, { id: 12 });
    view = await render(<Dialogs />);
    const dialog = document.querySelector('[role="dialog"]')!;
    await choose(dialog, onnxFile());
    await click(button(dialog, "Import"));
    await flush();
    expect(sent.map((s) => s.path)).toEqual(["/api/graphs/import"]);
    expect((sent[0].body as FormData).get("name")).toBeNull(); // the server names it after the file
    expect(assign).toHaveBeenCalledWith("/g/12");
  });

  it("lists the operators that have no block, by count, and opens nothing", async () => {
    useEditor.getState().openDialog("import");
    answer(400, {
      error: "cannot import: 3 × LSTM, 1 × Resize have no Shipyard block; nothing was imported",
      problems: [{ message: "cannot import: ...", node: null, field: null }],
      unmapped: { Resize: 1, LSTM: 3 },
    });
    view = await render(<Dialogs />);
    const dialog = document.querySelector('[role="dialog"]')!;
    await type(dialog.querySelector('input[name="name"]') as HTMLInputElement, "mine");
    await choose(dialog, onnxFile());
    await click(button(dialog, "Import"));
    await flush();
    const refusal = dialog.querySelector('[data-testid="import-refusal"]')!;
    expect(refusal.textContent).toContain("have no Shipyard block");
    expect(Array.from(refusal.querySelectorAll("li")).map((li) => li.textContent)).toEqual(["3 × LSTM", "1 × Resize"]);
    expect(assign).not.toHaveBeenCalled();
    expect(useEditor.getState().dialog).toBe("import");
  });

  it("shows the server's problems for a file refused for another reason", async () => {
    useEditor.getState().openDialog("import");
    answer(400, { error: "x", problems: [{ message: "2 tensor(s) are stored in external data files", node: null, field: null }] });
    view = await render(<Dialogs />);
    const dialog = document.querySelector('[role="dialog"]')!;
    await choose(dialog, onnxFile());
    await click(button(dialog, "Import"));
    await flush();
    expect(dialog.querySelector('[data-testid="import-refusal"] li')!.textContent).toContain("external data files");
  });

  it("asks for a file before sending anything", async () => {
    useEditor.getState().openDialog("import");
    answer(201, { id: 1 });
    view = await render(<Dialogs />);
    const dialog = document.querySelector('[role="dialog"]')!;
    await click(button(dialog, "Import"));
    expect(dialog.textContent).toContain("Choose an .onnx file.");
    expect(sent).toHaveLength(0);
  });
});
