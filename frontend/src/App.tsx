// The editor's screen: top bar; palette, canvas and inspector (with a learning path above it
// when one is open); the status line; the runs drawer and the SQL console. It opens what the
// page was asked for (a new model, a saved one, a shared one, a path: `?path=gpt`).
import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useEffect, useRef, useState } from "react";

import { Dialogs, NoticeBar } from "./dialogs/Dialogs";
import { Canvas } from "./editor/Canvas";
import { Inspector } from "./editor/Inspector";
import { Palette } from "./editor/Palette";
import { StatusBar } from "./editor/StatusBar";
import { TopBar } from "./editor/TopBar";
import { installShortcuts } from "./editor/shortcuts";
import { PathPanel } from "./paths/PathPanel";
import { followPath, pathToOpen, usePaths } from "./paths/store";
import { hasAttentionModules } from "./runs/attentionData";
import { RunDrawer } from "./runs/RunDrawer";
import { SqlConsole } from "./sql/SqlConsole";
import { isDirty, useEditor } from "./store/editor";
import { useAccount } from "./store/account";
import { type Boot, claimIfAsked, followDrafts, followInspection, open, save } from "./store/session";

export function App({ boot }: { boot: Boot }) {
  const ready = useEditor((s) => s.ready);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    useAccount.setState({ loggedIn: boot.user !== null, loginUrl: boot.loginUrl, signupUrl: boot.signupUrl });
    const stopInspection = followInspection();
    const stopDrafts = followDrafts();
    const stopPath = followPath();
    usePaths.getState().setLoggedIn(boot.user !== null);
    open(boot)
      // Back from signing up with a visitor's drawing: it becomes the first saved model.
      .then(() => claimIfAsked(boot))
      .then(() => {
        const path = pathToOpen(window.location.search, useEditor.getState().graph?.id ?? null);
        if (path) void usePaths.getState().open(path);
        // The home page's "Import ONNX…" lands here: a blank canvas with the import dialog up.
        if (new URLSearchParams(window.location.search).get("import") === "onnx") {
          useEditor.getState().openDialog("import");
        }
      })
      .catch((error: Error) => setFailure(error.message));
    const beforeUnload = (event: BeforeUnloadEvent) => {
      const s = useEditor.getState();
      if (s.ready && !s.readOnly && isDirty(s)) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", beforeUnload);
    return () => {
      stopInspection();
      stopDrafts();
      stopPath();
      window.removeEventListener("beforeunload", beforeUnload);
    };
  }, [boot]);

  if (failure) {
    return (
      <div className="failure">
        <h1>This model could not be opened</h1>
        <p>{failure}</p>
        <p><a href="/">Back to your models</a></p>
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <div className={`app ${ready ? "" : "loading"}`}>
        <TopBar loginUrl={boot.loginUrl} signupUrl={boot.signupUrl} loggedIn={boot.user !== null} />
        <Palette />
        <main className="canvas-area">{ready ? <Canvas /> : <div className="canvas-loading">Loading…</div>}</main>
        <Inspector />
        {ready && <PathPanel />}
        <StatusBar />
        {/* The runs drawer and the SQL console share the bottom row, side by side when both are open. */}
        <div className="drawers">
          {ready && <Drawer />}
          {ready && <SqlConsole />}
        </div>
        <Shortcuts />
        <Dialogs />
        <NoticeBar />
      </div>
    </ReactFlowProvider>
  );
}

function Shortcuts() {
  const flow = useReactFlow();
  const ref = useRef(flow);
  ref.current = flow;
  useEffect(() => installShortcuts(() => ref.current), []);
  return null;
}

function Drawer() {
  const open = useEditor((s) => s.drawerOpen);
  const readOnly = useEditor((s) => s.readOnly);
  // Runs need an account: a visitor who opens the drawer (Run, the status line) is asked to
  // sign up. A shared page's visitor still watches the runs its owner published.
  const asksAccount = useAccount((s) => !s.loggedIn) && !readOnly;
  useEffect(() => {
    if (open && asksAccount) {
      useEditor.getState().openDrawer(false);
      useEditor.getState().openDialog("signup");
    }
  }, [open, asksAccount]);
  const graph = useEditor((s) => s.graph);
  const shareToken = useEditor((s) => s.shareToken);
  const openDrawer = useEditor((s) => s.openDrawer);
  const suggested = useEditor((s) => s.suggestedDataset);
  const hasAttention = useEditor((s) => hasAttentionModules(s.doc, s.report));
  if (asksAccount) return null;
  return (
    <RunDrawer
      hasAttention={hasAttention}
      graphId={readOnly ? null : graph?.id ?? null}
      shareToken={shareToken}
      readOnly={readOnly}
      starterDataset={suggested ?? undefined}
      open={open}
      onOpenChange={(next) => openDrawer(next)}
      ensureSaved={ensureSaved}
    />
  );
}

/** Runs need a saved version: save first when there are unsaved changes. */
async function ensureSaved(): Promise<{ graphId: number; version: number } | null> {
  const s = useEditor.getState();
  if (s.graph && !isDirty(s)) return { graphId: s.graph.id, version: s.graph.head };
  const outcome = await save(s.graph ? "Saved to start a run" : undefined);
  const after = useEditor.getState();
  if ((outcome === "saved" || outcome === "unchanged") && after.graph) {
    return { graphId: after.graph.id, version: after.graph.head };
  }
  return null;
}
