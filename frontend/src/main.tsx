import "@xyflow/react/dist/style.css";
import "./styles.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App";
import { canonical } from "./graph/ops";
import { useEditor } from "./store/editor";
import { readBoot } from "./store/session";

const boot = readBoot();

// A handle for scripts and the end-to-end tests: the document exactly as it would be saved.
Object.defineProperty(window, "__shipyard", {
  value: {
    store: useEditor,
    document: () => JSON.parse(JSON.stringify(useEditor.getState().doc)),
    canonical: () => canonical(useEditor.getState().doc),
    report: () => useEditor.getState().report,
    get ready() {
      return useEditor.getState().ready;
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App boot={boot} />
  </StrictMode>,
);
