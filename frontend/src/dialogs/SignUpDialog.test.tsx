// A visitor without an account: what needs one (save, Ctrl/Cmd+S, share, versions, run)
// opens the one sign-up dialog, whose links come back to this editor to claim the drawing.
import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api } from "../api/client";
import type { BlockCatalog, GraphDocument } from "../api/types";
import { TopBar } from "../editor/TopBar";
import { installShortcuts } from "../editor/shortcuts";
import { useAccount } from "../store/account";
import { CLAIM_MARK } from "../store/claim";
import { useEditor } from "../store/editor";
import { open } from "../store/session";
import catalog from "../test/catalog.json";
import { Dialogs } from "./Dialogs";
import { SIGN_UP_TITLE } from "./SignUpDialog";
import { button, click, dialogName, type Rendered, render } from "./testing";

const doc: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "my first net",
  nodes: [{ id: "x", type: "Input", params: { shape: [64] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
};
const initial = useEditor.getState();
const account = useAccount.getState();
let view: Rendered | null = null;
let stopShortcuts: (() => void) | null = null;

beforeEach(() => {
  useEditor.setState(initial, true);
  useAccount.setState({
    loggedIn: false,
    loginUrl: "/accounts/login/?next=/new%3Fpath%3Dgpt",
    signupUrl: "/accounts/signup/?next=/new%3Fpath%3Dgpt",
  });
  useEditor.getState().load(doc, { graph: null });
  history.replaceState(null, "", "/new?path=gpt");
  localStorage.clear();
});
afterEach(() => {
  view?.unmount();
  view = null;
  stopShortcuts?.();
  stopShortcuts = null;
  useAccount.setState(account, true);
  vi.restoreAllMocks();
});

const dialog = () => document.querySelector<HTMLElement>('[role="dialog"]');

async function renderEditorBits() {
  view = await render(
    <>
      <TopBar loginUrl="" signupUrl="" loggedIn={false} />
      <Dialogs />
    </>,
  );
}

describe("a visitor without an account", () => {
  it.each(["Save", "Share", "▶ Run"])("pressing %s opens the sign-up dialog", async (name) => {
    await renderEditorBits();
    await click(button(view!.container, name));
    expect(dialogName(dialog()!)).toBe(SIGN_UP_TITLE);
  });

  it("Ctrl+S opens it too, and the code and shortcuts do not", async () => {
    await renderEditorBits();
    stopShortcuts = installShortcuts(() => null);
    await act(async () => {
      window.dispatchEvent(new KeyboardEvent("keydown", { key: "s", ctrlKey: true, bubbles: true }));
    });
    expect(dialogName(dialog()!)).toBe(SIGN_UP_TITLE);
    await act(async () => useEditor.getState().openDialog("shortcuts"));
    expect(dialogName(dialog()!)).not.toBe(SIGN_UP_TITLE);
  });

  it("its links come back here with claim=1, keeping the drawing and marking it", async () => {
    // The editor opens this page (its draft's key) first; Vitest has no server, so the
    // two catalog calls are spied on.
    vi.spyOn(api, "blocks").mockResolvedValue(catalog as unknown as BlockCatalog);
    vi.spyOn(api, "starters").mockResolvedValue([]);
    await open({ graphId: null, starter: null, shareToken: null, user: null, loginUrl: "", signupUrl: "", report: null });
    useEditor.getState().load(doc, { graph: null });
    await renderEditorBits();
    await act(async () => useEditor.getState().openDialog("save"));
    const links = Array.from(dialog()!.querySelectorAll<HTMLAnchorElement>("a"));
    const byText = Object.fromEntries(links.map((a) => [a.textContent!.trim(), a.getAttribute("href")!]));
    const next = (href: string) => new URL(href, "http://x").searchParams.get("next");
    expect(byText["Sign up"].startsWith("/accounts/signup/?")).toBe(true);
    expect(next(byText["Sign up"])).toBe("/new?path=gpt&claim=1");
    expect(byText["Log in"].startsWith("/accounts/login/?")).toBe(true);
    expect(next(byText["Log in"])).toBe("/new?path=gpt&claim=1");
    // Following a link (navigation itself stopped here) keeps the drawing for the claim.
    const signUp = links.find((a) => a.textContent!.trim() === "Sign up")!;
    signUp.addEventListener("click", (event) => event.preventDefault());
    await click(signUp);
    expect(JSON.parse(localStorage.getItem(CLAIM_MARK)!).key).toBe("shipyard.draft.new.blank");
    expect(JSON.parse(localStorage.getItem("shipyard.draft.new.blank")!).doc.nodes).toEqual(doc.nodes);
  });

  it("with an account, Save is the Save dialog", async () => {
    useAccount.setState({ loggedIn: true });
    useEditor.getState().openDialog("save"); // before the first render
    view = await render(<Dialogs />);
    expect(dialogName(dialog()!)).toBe("Save");
  });
});
