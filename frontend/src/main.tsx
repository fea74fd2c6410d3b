import "@xyflow/react/dist/style.css";
import "./styles.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App";
import { canonical } from "./graph/ops";
import { useAccount } from "./store/account";
import { useEditor } from "./store/editor";
import { readBoot } from "./store/session";

const boot = readBoot();
// Before the first render: what a visitor without an account may do shows at once.
useAccount.setState({ loggedIn: boot.user !== null, loginUrl: boot.loginUrl, signupUrl: boot.signupUrl });

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
