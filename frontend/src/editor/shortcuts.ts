// Keyboard paths for everything (docs in the shortcuts dialog), and copy/paste through the
// system clipboard as graph JSON, so blocks move between tabs and into text files.
import type { ReactFlowInstance } from "@xyflow/react";

import { isFragment } from "../graph/ops";
import { useSql } from "../sql/store";
import { useEditor } from "../store/editor";
import { autoLayoutHere, requestFit } from "./view";

function typingInto(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

export function installShortcuts(flow: () => ReactFlowInstance | null): () => void {
  const onKey = (event: KeyboardEvent) => {
    const s = useEditor.getState();
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (mod && key === "s") {
      event.preventDefault();
      if (!s.readOnly) s.openDialog("save");
      return;
    }
    if (typingInto(event.target) || s.dialog !== null) return;

    if (mod && key === "z") {
      event.preventDefault();
      if (event.shiftKey) s.redo();
      else s.undo();
    } else if (mod && key === "y") {
      event.preventDefault();
      s.redo();
    } else if (mod && key === "d") {
      event.preventDefault();
      s.duplicateSelection();
    } else if (mod && key === "a") {
      event.preventDefault();
      const current = flow()?.getNodes().map((n) => n.id) ?? [];
      s.select(current);
    } else if (mod && key === "g") {
      event.preventDefault();
      s.repeatSelection();
    } else if (!mod && (event.key === "Delete" || event.key === "Backspace")) {
      event.preventDefault();
      s.deleteSelection();
    } else if (!mod && event.key === "/") {
      event.preventDefault();
      document.getElementById("block-search")?.focus();
    } else if (!mod && event.key === "?") {
      event.preventDefault();
      s.openDialog("shortcuts");
    } else if (!mod && event.key === "Escape") {
      if (s.selection.length) s.select([]);
      else if (s.scope.length) s.leaveTo(s.scope.length - 1);
    } else if (!mod && event.key === "Enter" && s.selection.length === 1) {
      const node = flow()?.getNode(s.selection[0]);
      if (node?.type === "repeat") s.enter(node.id);
    } else if (!mod && key === "l" && !s.readOnly) {
      const current = flow();
      if (current) autoLayoutHere(current);
    } else if (!mod && key === "f") {
      requestFit(200);
    } else if (!mod && !event.altKey && key === "q") {
      event.preventDefault();
      useSql.getState().toggle();
    }
  };

  const busy = (event: Event) =>
    typingInto(event.target) || typingInto(document.activeElement) || useEditor.getState().dialog !== null;

  const onCopy = (event: ClipboardEvent) => {
    if (busy(event)) return;
    const fragment = useEditor.getState().copySelection();
    if (!fragment || !event.clipboardData) return;
    event.preventDefault();
    event.clipboardData.setData("text/plain", JSON.stringify(fragment, null, 2));
  };

  const onCut = (event: ClipboardEvent) => {
    if (busy(event)) return;
    const s = useEditor.getState();
    if (s.readOnly) return;
    onCopy(event);
    if (event.defaultPrevented) s.deleteSelection();
  };

  const onPaste = (event: ClipboardEvent) => {
    if (busy(event)) return;
    const text = event.clipboardData?.getData("text/plain") ?? "";
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // not ours: plain text pasted onto the canvas does nothing
    }
    if (!isFragment(parsed)) return;
    event.preventDefault();
    useEditor.getState().paste(parsed, [40, 40]);
  };

  window.addEventListener("keydown", onKey);
  document.addEventListener("copy", onCopy);
  document.addEventListener("cut", onCut);
  document.addEventListener("paste", onPaste);
  return () => {
    window.removeEventListener("keydown", onKey);
    document.removeEventListener("copy", onCopy);
    document.removeEventListener("cut", onCut);
    document.removeEventListener("paste", onPaste);
  };
}
