// The palette: blocks from the server's catalog, grouped by category, with a search box.
// Drag one onto the canvas, or click it to read its explanation in the inspector. Under
// "My blocks", the user's saved graphs: click one (or Enter) to insert it, pinned to its
// latest version; or paste a share link someone gave you to insert their graph the same way.
import { useReactFlow } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";

import { api, ApiError } from "../api/client";
import type { Block, MyBlock } from "../api/types";
import { shareTokenOf } from "../graph/custom";
import { useAccount } from "../store/account";
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
  const current = useEditor((s) => s.graph?.id);
  const shared = useEditor((s) => s.shareToken !== null);
  const myBlocks = useEditor((s) => s.myBlocks);

  const loggedIn = useAccount((s) => s.loggedIn);

  useEffect(() => {
    if (readOnly || shared || !loggedIn) return; // a visitor has no blocks of their own
    let live = true;
    api.myBlocks().then((found) => live && useEditor.getState().setMyBlocks(found), () => {});
    return () => {
      live = false;
    };
  }, [readOnly, shared, current, loggedIn]);

  const mine = useMemo(() => {
    const q = query.trim().toLowerCase();
    return myBlocks.filter((b) => b.graph_id !== current && (!q || b.name.toLowerCase().includes(q)));
  }, [myBlocks, current, query]);

  const insert = async (b: MyBlock) => {
    try {
      const found = await api.customBlock(b.source, b.version);
      const at = visibleCentre(flow, BLOCK_SIZE) ?? [80, 80];
      useEditor.getState().addCustom(found, at);
    } catch {
      useEditor.getState().notify({ kind: "error", text: `Could not insert ${b.name}: reload My blocks and try again.` });
    }
  };

  const [link, setLink] = useState("");
  const [linkError, setLinkError] = useState<string | null>(null);
  // Someone else's graph, from a share link they gave: only a well-formed token is sent.
  const insertShared = async () => {
    const token = shareTokenOf(link);
    if (!token) {
      setLinkError("That is not a share link: paste a link like https://…/s/<token>, or the token itself.");
      return;
    }
    try {
      const found = await api.customBlock(`share:${token}`);
      if (!found.usable) {
        setLinkError(found.problem ?? `${found.name} cannot be used as a block.`);
        return;
      }
      const at = visibleCentre(flow, BLOCK_SIZE) ?? [80, 80];
      if (useEditor.getState().addCustom(found, at) !== null) {
        setLink("");
        setLinkError(null);
      }
    } catch (caught) {
      setLinkError(caught instanceof ApiError && caught.status === 404
        ? "No such share link: it may have been revoked; ask its owner for a new one."
        : `Could not add the shared block: ${caught instanceof Error ? caught.message : String(caught)}`);
    }
  };

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
        {!readOnly && !shared && (
          <section data-testid="my-blocks">
            <h3>My blocks</h3>
            <form
              className="share-add"
              onSubmit={(e) => {
                e.preventDefault();
                void insertShared();
              }}
            >
              <input
                type="text"
                placeholder="Add from a share link…"
                aria-label="Add from a share link"
                data-testid="share-link"
                value={link}
                onChange={(e) => {
                  setLink(e.target.value);
                  setLinkError(null);
                }}
              />
              {linkError && <p className="error" role="alert" data-testid="share-link-error">{linkError}</p>}
            </form>
            {mine.map((b) => (
              <div
                key={b.source}
                className={`palette-item cat-my-blocks ${b.usable ? "" : "muted"}`}
                data-testid="my-block"
                title={b.usable ? `${b.inputs.map((p) => p.id).join(", ")} → ${b.outputs.map((p) => p.id).join(", ")}` : b.problem ?? ""}
                tabIndex={0}
                onClick={() => b.usable && insert(b)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && b.usable) insert(b);
                }}
              >
                <span className="pi-type">{b.name} v{b.version}</span>
                <span className="pi-summary">{b.usable ? `${b.inputs.length} in, ${b.outputs.length} out` : b.problem}</span>
              </div>
            ))}
          </section>
        )}
        {groups.length === 0 && mine.length === 0 && <p className="muted pad">No block matches “{query}”.</p>}
      </div>
    </aside>
  );
}
