// A visitor without an account draws in the editor; their drawing lives in this browser's
// draft (session.ts). Saving, sharing or running asks them to sign up or log in; the links
// that dialog offers come back to the same editor URL with `claim=1`, after a mark is left
// here naming the draft. Back, logged in, the editor saves the draft as their first model.
// The mark is taken (removed) before that save starts, so a reload never saves it twice.

export const CLAIM_MARK = "shipyard.claim";
export const CLAIM_PARAM = "claim";
/** A mark older than this is forgotten: the visitor went elsewhere. */
export const CLAIM_MAX_AGE_MS = 24 * 3600 * 1000;

interface Mark {
  key: string;
  at: number;
}

/** The sign-up or log-in URL (`accountUrl`, whose `next` the page set) with `next` pointing
 * back at `here` (the editor's path and query) plus `claim=1`; the other parameters of `here`
 * (`starter`, `path`, ...) pass through. */
export function claimUrl(accountUrl: string, here: { pathname: string; search: string }): string {
  const url = new URL(accountUrl, "http://shipyard.invalid");
  const query = new URLSearchParams(here.search);
  query.set(CLAIM_PARAM, "1");
  url.searchParams.set("next", `${here.pathname}?${query.toString()}`);
  return `${url.pathname}?${url.searchParams.toString()}`;
}

/** `search` without the claim parameter ("" when nothing is left). */
export function withoutClaim(search: string): string {
  const query = new URLSearchParams(search);
  query.delete(CLAIM_PARAM);
  const rest = query.toString();
  return rest ? `?${rest}` : "";
}

export function markClaim(draftKey: string, now = Date.now()): void {
  try {
    localStorage.setItem(CLAIM_MARK, JSON.stringify({ key: draftKey, at: now } satisfies Mark));
  } catch {
    // storage full or off: the drawing is not claimed, but its draft may still be restored
  }
}

/** Whether to save the draft under `draftKey` as a new model now: the URL asks for it
 * (`claim=1`) and this browser's mark names that draft and is fresh. The mark is removed
 * either way, so this is true at most once per mark. */
export function takeClaim(search: string, draftKey: string, now = Date.now()): boolean {
  let mark: Mark | null = null;
  try {
    const raw = localStorage.getItem(CLAIM_MARK);
    if (raw === null) return false;
    localStorage.removeItem(CLAIM_MARK);
    const parsed = JSON.parse(raw) as Partial<Mark> | null;
    if (parsed && typeof parsed.key === "string" && typeof parsed.at === "number") {
      mark = { key: parsed.key, at: parsed.at };
    }
  } catch {
    return false;
  }
  const asked = new URLSearchParams(search).get(CLAIM_PARAM) === "1";
  return asked && mark !== null && mark.key === draftKey && now - mark.at >= 0 && now - mark.at < CLAIM_MAX_AGE_MS;
}
