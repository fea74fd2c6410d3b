// Double-click on the canvas: a search box at that spot; Enter adds the highlighted block.
import { useMemo, useState } from "react";

import type { Block } from "../api/types";
import { useEditor } from "../store/editor";

/** Blocks matching a search, best first. A Custom block is never drawn from the catalog:
 * it comes from a saved graph (My blocks). */
export function matchBlocks(all: Block[], query: string): Block[] {
  const blocks = all.filter((b) => b.type !== "Custom");
  const q = query.trim().toLowerCase();
  if (!q) return blocks;
  const scored = blocks
    .map((b) => {
      const type = b.type.toLowerCase();
      const score = type === q ? 0 : type.startsWith(q) ? 1 : type.includes(q) ? 2
        : b.category.toLowerCase().includes(q) ? 3 : b.summary.toLowerCase().includes(q) ? 4 : -1;
      return { b, score };
    })
    .filter((x) => x.score >= 0);
  scored.sort((x, y) => x.score - y.score);
  return scored.map((x) => x.b);
}

export function QuickAdd({ left, top, onPick, onClose }: {
  left: number; top: number; onPick(type: string): void; onClose(): void;
}) {
  const blocks = useEditor((s) => s.blocks);
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const matches = useMemo(() => matchBlocks(blocks, query).slice(0, 8), [blocks, query]);
  return (
    <div className="quick-add" style={{ left, top }} onDoubleClick={(e) => e.stopPropagation()}>
      <input
        autoFocus
        placeholder="Add a block…"
        aria-label="Add a block"
        value={query}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
        }}
        onBlur={() => setTimeout(onClose, 150)}
        onKeyDown={(e) => {
          if (e.key === "Escape") onClose();
          else if (e.key === "ArrowDown") setActive((a) => Math.min(a + 1, matches.length - 1));
          else if (e.key === "ArrowUp") setActive((a) => Math.max(a - 1, 0));
          else if (e.key === "Enter" && matches[active]) onPick(matches[active].type);
        }}
      />
      <ul role="listbox">
        {matches.map((b, i) => (
          <li
            key={b.type}
            role="option"
            aria-selected={i === active}
            className={i === active ? "active" : ""}
            onMouseDown={(e) => {
              e.preventDefault();
              onPick(b.type);
            }}
            onMouseEnter={() => setActive(i)}
          >
            <strong>{b.type}</strong> <span className="muted">{b.category}</span>
          </li>
        ))}
        {matches.length === 0 && <li className="muted">No block matches “{query}”</li>}
      </ul>
    </div>
  );
}
