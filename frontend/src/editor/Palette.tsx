// The palette: blocks from the server's catalog, grouped by category, with a search box.
// Drag one onto the canvas, or click it to read its explanation in the inspector.
import { useReactFlow } from "@xyflow/react";
import { useMemo, useState } from "react";

import type { Block } from "../api/types";
import { useEditor } from "../store/editor";
import { BLOCK_MIME } from "./Canvas";
import { BLOCK_SIZE } from "./layout";
import { matchBlocks } from "./QuickAdd";
import { visibleCentre } from "./view";

const ORDER = ["Inputs & outputs", "Layers", "Convolution", "Pooling", "Normalization", "Activations",
  "Attention", "Embeddings", "Merge", "Shape", "Regularization", "Structure", "Model settings"];

export function Palette() {
  const blocks = useEditor((s) => s.blocks);
  const readOnly = useEditor((s) => s.readOnly);
  const focus = useEditor((s) => s.focus);
  const focused = useEditor((s) => s.focusBlock);
  const [query, setQuery] = useState("");
  const flow = useReactFlow();

  const groups = useMemo(() => {
    const found = matchBlocks(blocks, query);
    const byCategory = new Map<string, Block[]>();
    for (const b of found) byCategory.set(b.category, [...(byCategory.get(b.category) ?? []), b]);
    const rank = (c: string) => (ORDER.indexOf(c) === -1 ? 99 : ORDER.indexOf(c));
    return [...byCategory.entries()].sort((a, b) => rank(a[0]) - rank(b[0]));
  }, [blocks, query]);

  return (
    <aside className="palette" aria-label="Blocks">
      <input
        id="block-search"
        className="search"
        type="search"
        placeholder="Search blocks"
        aria-label="Search blocks"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            setQuery("");
            (e.target as HTMLInputElement).blur();
          }
        }}
      />
      <div className="palette-groups">
        {groups.map(([category, items]) => (
          <section key={category}>
            <h3>{category}</h3>
            {items.map((b) => (
              <div
                key={b.type}
                className={`palette-item cat-${category.toLowerCase().replace(/[^a-z]+/g, "-")} ${focused === b.type ? "focused" : ""}`}
                data-testid="palette-item"
                data-type={b.type}
                draggable={!readOnly}
                title={b.summary}
                tabIndex={0}
                onDragStart={(e) => {
                  e.dataTransfer.setData(BLOCK_MIME, b.type);
                  e.dataTransfer.setData("text/plain", b.type);
                  e.dataTransfer.effectAllowed = "copy";
                }}
                onClick={() => focus(b.type)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && !readOnly) {
                    // In the middle of what the canvas shows, where the user is looking.
                    const at = visibleCentre(flow, BLOCK_SIZE) ?? [80, 80];
                    useEditor.getState().addBlock(b.type, at);
                  }
                }}
              >
                <span className="pi-type">{b.type}</span>
                <span className="pi-summary">{b.summary}</span>
              </div>
            ))}
          </section>
        ))}
        {groups.length === 0 && <p className="muted pad">No block matches “{query}”.</p>}
      </div>
    </aside>
  );
}
