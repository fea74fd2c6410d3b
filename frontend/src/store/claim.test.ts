// The claim of a visitor's drawing after signing up: the links that bring them back, the mark
// that asks for the save, and the save itself, once. The API is spied on (vi.spyOn) because
// Vitest has no server: what is checked is what the editor asks of it and what it keeps.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ApiError, api } from "../api/client";
import type { GraphDetail, GraphDocument } from "../api/types";
import { CLAIM_MARK, CLAIM_MAX_AGE_MS, claimUrl, markClaim, takeClaim, withoutClaim } from "./claim";
import { useEditor } from "./editor";
import { type Boot, claimIfAsked, draftKey, keepForClaim, open, readDraft } from "./session";
import catalog from "../test/catalog.json";
import type { BlockCatalog } from "../api/types";

const drawing: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "my first net",
  nodes: [{ id: "x", type: "Input", params: { shape: [64] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
};

const initial = useEditor.getState();

beforeEach(() => {
  localStorage.clear();
  useEditor.setState(initial, true);
  history.replaceState(null, "", "/");
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe("claimUrl", () => {
  it("points next back at this editor with claim=1, keeping its other parameters", () => {
    const url = claimUrl("/accounts/signup/?next=/new%3Fstarter%3Dmlp", { pathname: "/new", search: "?starter=mlp&path=gpt" });
    const next = new URL(url, "http://x").searchParams.get("next");
    expect(url.startsWith("/accounts/signup/?")).toBe(true);
    expect(next).toBe("/new?starter=mlp&path=gpt&claim=1");
    expect(claimUrl("/accounts/login/", { pathname: "/new", search: "" })).toBe("/accounts/login/?next=%2Fnew%3Fclaim%3D1");
  });

  it("does not add claim twice, and withoutClaim drops only it", () => {
    const next = new URL(claimUrl("/accounts/signup/", { pathname: "/new", search: "?claim=1&path=gpt" }), "http://x").searchParams.get("next");
    expect(next).toBe("/new?claim=1&path=gpt");
    expect(withoutClaim("?starter=mlp&claim=1&path=gpt")).toBe("?starter=mlp&path=gpt");
    expect(withoutClaim("?claim=1")).toBe("");
  });
});

describe("takeClaim", () => {
  it("is true once for the marked draft when the URL asks", () => {
    markClaim("shipyard.draft.new.blank", 1000);
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", 2000)).toBe(true);
    expect(localStorage.getItem(CLAIM_MARK)).toBeNull();
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", 3000)).toBe(false);
  });

  it("is false for another draft, an old mark, a URL that does not ask, or a broken mark", () => {
    markClaim("shipyard.draft.new.mlp", 0);
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", 10)).toBe(false);
    markClaim("shipyard.draft.new.blank", 0);
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", CLAIM_MAX_AGE_MS)).toBe(false);
    markClaim("shipyard.draft.new.blank", 0);
    expect(takeClaim("", "shipyard.draft.new.blank", 10)).toBe(false);
    expect(localStorage.getItem(CLAIM_MARK)).toBeNull(); // taken anyway
    localStorage.setItem(CLAIM_MARK, "{not json");
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", 10)).toBe(false);
    localStorage.setItem(CLAIM_MARK, JSON.stringify({ key: 5, at: "x" }));
    expect(takeClaim("?claim=1", "shipyard.draft.new.blank", 10)).toBe(false);
  });
});

function boot(user: Boot["user"]): Boot {
  return { graphId: null, starter: null, shareToken: null, user, loginUrl: "/accounts/login/", signupUrl: "/accounts/signup/", report: null };
}

const detail = (id: number): GraphDetail => ({
  id, name: "my first net", head: 1, created_at: "", updated_at: "", forked_from: null,
  version: { number: 1, document: drawing },
} as unknown as GraphDetail);

/** A visitor draws on a blank canvas, then follows the sign-up dialog's link. */
async function drawAsVisitor(): Promise<void> {
  vi.spyOn(api, "blocks").mockResolvedValue(catalog as unknown as BlockCatalog);
  vi.spyOn(api, "starters").mockResolvedValue([]);
  history.replaceState(null, "", "/new?path=gpt");
  await open(boot(null));
  useEditor.getState().load(drawing, { graph: null });
  keepForClaim();
}

describe("claimIfAsked", () => {
  it("saves the visitor's drawing as a new model once, then drops the draft", async () => {
    await drawAsVisitor();
    const key = draftKey({ graphId: null, starter: null });
    expect(readDraft(key)?.doc).toEqual(drawing);

    // Back, logged in, on the URL the dialog's link gave.
    history.replaceState(null, "", "/new?path=gpt&claim=1");
    const create = vi.spyOn(api, "createGraph").mockResolvedValue(detail(42));
    await open(boot({ username: "ada" }));
    expect(useEditor.getState().doc.nodes).toEqual(drawing.nodes); // the draft, restored
    expect(await claimIfAsked(boot({ username: "ada" }))).toBe("saved");
    expect(create).toHaveBeenCalledTimes(1);
    expect(create.mock.calls[0][0]).toMatchObject({ name: "my first net" });
    expect(create.mock.calls[0][0].document?.nodes).toEqual(drawing.nodes);
    expect(window.location.pathname).toBe("/g/42");
    expect(readDraft(key)).toBeNull();
    expect(useEditor.getState().graph?.id).toBe(42);
    expect(useEditor.getState().notice?.text).toContain("Your drawing is saved as your model");

    // A reload of the claim URL saves nothing more.
    history.replaceState(null, "", "/new?path=gpt&claim=1");
    useEditor.setState(initial, true);
    await open(boot({ username: "ada" }));
    expect(await claimIfAsked(boot({ username: "ada" }))).toBeNull();
    expect(create).toHaveBeenCalledTimes(1);
    expect(window.location.search).toBe("?path=gpt");
  });

  it("a drawing without a name is saved under the server's default name", async () => {
    await drawAsVisitor();
    useEditor.getState().load({ ...drawing, name: "" }, { graph: null });
    keepForClaim();
    history.replaceState(null, "", "/new?claim=1");
    const create = vi.spyOn(api, "createGraph").mockResolvedValue(detail(7));
    await open(boot({ username: "ada" }));
    await claimIfAsked(boot({ username: "ada" }));
    expect(create.mock.calls[0][0].name).toBeUndefined();
  });

  it("a save that fails keeps the draft in this browser and says so", async () => {
    await drawAsVisitor();
    history.replaceState(null, "", "/new?path=gpt&claim=1");
    vi.spyOn(api, "createGraph").mockRejectedValue(new ApiError(500, { error: "the server is down" }));
    await open(boot({ username: "ada" }));
    expect(await claimIfAsked(boot({ username: "ada" }))).toBe("failed");
    const key = draftKey({ graphId: null, starter: null });
    expect(readDraft(key)?.doc.nodes).toEqual(drawing.nodes);
    const notice = useEditor.getState().notice!;
    expect(notice.kind).toBe("error");
    expect(notice.text).toContain("kept in this browser");
    expect(notice.text).toContain("the server is down");
    expect(window.location.pathname).toBe("/new");
    expect(window.location.search).toBe("?path=gpt");
  });

  it("a visitor (not logged in) never claims, and a logged-in page without the mark neither", async () => {
    await drawAsVisitor();
    history.replaceState(null, "", "/new?claim=1");
    const create = vi.spyOn(api, "createGraph");
    expect(await claimIfAsked(boot(null))).toBeNull();
    localStorage.removeItem(CLAIM_MARK);
    history.replaceState(null, "", "/new?claim=1");
    await open(boot({ username: "ada" }));
    expect(await claimIfAsked(boot({ username: "ada" }))).toBeNull();
    expect(create).not.toHaveBeenCalled();
  });
});
