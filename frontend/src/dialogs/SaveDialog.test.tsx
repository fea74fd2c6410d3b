import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("../store/session", () => ({
  save: vi.fn(),
  reloadLatest: vi.fn(),
  forkLocal: vi.fn(),
  restore: vi.fn(),
  forkShared: vi.fn(),
  rename: vi.fn(),
}));

import type { GraphDocument } from "../api/types";
import { useEditor } from "../store/editor";
import * as session from "../store/session";
import { Dialogs, NoticeBar } from "./Dialogs";
import { button, click, dialogName, type Rendered, render, type } from "./testing";

const doc: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "tiny-mlp",
  nodes: [{ id: "x", type: "Input", params: { shape: [64] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
};

const save = vi.mocked(session.save);
const initial = useEditor.getState();
let view: Rendered | null = null;

beforeEach(() => {
  useEditor.setState(initial, true);
  save.mockReset();
});

afterEach(() => {
  view?.unmount();
  view = null;
});

function dialog(): HTMLElement | null {
  return document.querySelector('[role="dialog"]');
}

describe("Save dialog", () => {
  it("is a named modal dialog that saves with the message and closes", async () => {
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: doc });
    useEditor.getState().setName("changed");
    useEditor.getState().openDialog("save");
    save.mockResolvedValue("saved");
    view = await render(<Dialogs />);

    const d = dialog()!;
    expect(d.getAttribute("aria-modal")).toBe("true");
    expect(dialogName(d)).toBe("Save");
    expect(d.textContent).toContain("Saves version 3 of tiny-mlp");
    // A saved graph has no name field: the message input is the only one, and has focus.
    const inputs = d.querySelectorAll("input");
    expect(inputs).toHaveLength(1);
    const message = inputs[0] as HTMLInputElement;
    expect(message.placeholder).toBe("What changed? (optional)");
    expect(document.activeElement).toBe(message);

    await type(message, "  wider hidden layer ");
    await click(button(d, "Save"));
    expect(save).toHaveBeenCalledTimes(1);
    expect(save).toHaveBeenCalledWith("wider hidden layer");
    expect(useEditor.getState().dialog).toBeNull();
    expect(dialog()).toBeNull();
  });

  it("submits on Enter (the form's submit) with no message as undefined", async () => {
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: doc });
    useEditor.getState().openDialog("save");
    save.mockResolvedValue("unchanged");
    view = await render(<Dialogs />);
    expect(dialog()!.textContent).toContain("Nothing has changed since version 2");
    await act(async () => {
      dialog()!.querySelector("form")!.requestSubmit();
    });
    expect(save).toHaveBeenCalledWith(undefined);
    expect(useEditor.getState().dialog).toBeNull();
  });

  it("shows 'saving…' while saving and stays open with the problem in words when refused", async () => {
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: null });
    useEditor.getState().openDialog("save");
    let finish: (outcome: session.SaveOutcome) => void = () => {};
    save.mockImplementation(() => new Promise((resolve) => {
      finish = resolve;
    }));
    view = await render(<><Dialogs /><NoticeBar /></>);
    await click(button(dialog()!, "Save"));
    expect(dialog()!.textContent).toContain("saving…");
    expect(button(dialog()!, "Save")!.disabled).toBe(true);

    await act(async () => {
      useEditor.getState().notify({
        kind: "error",
        text: "Not saved: the graph has 1 problem(s) (first: hidden: out_features must be at least 1, got 0).",
      });
      finish("invalid");
    });
    const d = dialog()!;
    expect(d).not.toBeNull();
    expect(useEditor.getState().dialog).toBe("save");
    expect(d.querySelector('[role="alert"]')!.textContent).toContain("out_features must be at least 1");
    expect(d.textContent).not.toContain("saving…");
    // Said once, in the dialog: the toast behind it is cleared.
    expect(useEditor.getState().notice).toBeNull();
    expect(document.querySelector('[data-testid="notice"]')).toBeNull();
  });

  it("asks a never-saved model for its name, defaulting to the document's", async () => {
    useEditor.getState().load(doc, { graph: null });
    useEditor.getState().openDialog("save");
    save.mockResolvedValue("saved");
    view = await render(<Dialogs />);
    const inputs = dialog()!.querySelectorAll("input");
    expect(inputs).toHaveLength(2);
    const name = inputs[0] as HTMLInputElement;
    expect(name.value).toBe("tiny-mlp");
    await type(name, "Tiny MLP");
    await type(inputs[1] as HTMLInputElement, "first");
    await click(button(dialog()!, "Save"));
    expect(useEditor.getState().doc.name).toBe("Tiny MLP");
    expect(save).toHaveBeenCalledWith("first");
  });

  it("leaves the conflict dialog up after a conflict", async () => {
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny-mlp", head: 2 }, savedDoc: null });
    useEditor.getState().openDialog("save");
    save.mockImplementation(async () => {
      useEditor.getState().setConflict({
        number: 3, author: "ada", message: "wider", restored_from: null, content_hash: "x", initial_weights: false,
        created_at: new Date(Date.now() - 5 * 60_000).toISOString(),
      });
      return "conflict";
    });
    view = await render(<Dialogs />);
    await click(button(dialog()!, "Save"));
    expect(useEditor.getState().dialog).toBe("conflict");
    const d = dialog()!;
    expect(dialogName(d)).toBe("Someone saved first");
    expect(d.textContent).toContain("ada saved version 3");
    expect(d.textContent).toContain("5 min ago");
    expect(button(d, "Reload theirs")).toBeTruthy();
    expect(button(d, "Save mine as a copy")).toBeTruthy();
    await click(button(d, "Save mine as a copy"));
    expect(session.forkLocal).toHaveBeenCalled();
  });

  it("closes on Escape and on a click on the backdrop", async () => {
    useEditor.getState().openDialog("shortcuts");
    view = await render(<Dialogs />);
    expect(dialogName(dialog()!)).toBe("Keyboard shortcuts");
    await act(async () => {
      document.activeElement!.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    });
    expect(useEditor.getState().dialog).toBeNull();

    await act(async () => useEditor.getState().openDialog("shortcuts"));
    const backdrop = dialog()!.parentElement!;
    await act(async () => {
      backdrop.dispatchEvent(new MouseEvent("mousedown", { bubbles: true }));
      backdrop.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    });
    expect(useEditor.getState().dialog).toBeNull();
  });
});

describe("Modal", () => {
  it("keeps clipboard events inside the dialog away from the editor's document handlers", async () => {
    useEditor.getState().openDialog("shortcuts");
    view = await render(<Dialogs />);
    const onCopy = vi.fn();
    document.addEventListener("copy", onCopy);
    try {
      await act(async () => {
        dialog()!.querySelector("table")!.dispatchEvent(new Event("copy", { bubbles: true }));
      });
      expect(onCopy).not.toHaveBeenCalled();
    } finally {
      document.removeEventListener("copy", onCopy);
    }
  });
});

describe("NoticeBar", () => {
  it("shows the notice, closes it, and lets info notices go after 4 s", async () => {
    vi.useFakeTimers();
    try {
      view = await render(<NoticeBar />);
      await act(async () => useEditor.getState().notify({ kind: "error", text: "Not saved: boom" }));
      const notice = document.querySelector('[data-testid="notice"]')!;
      expect(notice.textContent).toContain("Not saved: boom");
      expect(notice.getAttribute("role")).toBe("alert");
      await act(async () => vi.advanceTimersByTime(10_000));
      expect(useEditor.getState().notice).not.toBeNull();
      await click(button(notice, "Dismiss"));
      expect(document.querySelector('[data-testid="notice"]')).toBeNull();

      await act(async () => useEditor.getState().notify({ kind: "info", text: "Saved version 3." }));
      expect(document.querySelector('[data-testid="notice"]')!.textContent).toContain("Saved version 3.");
      await act(async () => vi.advanceTimersByTime(3_900));
      expect(useEditor.getState().notice).not.toBeNull();
      await act(async () => vi.advanceTimersByTime(200));
      expect(useEditor.getState().notice).toBeNull();
      expect(document.querySelector('[data-testid="notice"]')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});
