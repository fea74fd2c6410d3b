// Whether the editor's user has an account, and where to sign up or log in. A visitor
// without one draws, sees shapes, reads the code and uses SQL; what needs an account (save,
// share, versions, import, run) opens the one sign-up dialog instead (dialogs/SignUpDialog).
import { create } from "zustand";

interface AccountState {
  loggedIn: boolean;
  loginUrl: string;
  signupUrl: string;
}

export const useAccount = create<AccountState>(() => ({
  loggedIn: true,
  loginUrl: "/accounts/login/",
  signupUrl: "/accounts/signup/",
}));

/** The editor's dialogs that need an account: for a visitor, the sign-up dialog opens instead. */
export const NEEDS_ACCOUNT: ReadonlySet<string> = new Set(["save", "share", "versions", "import", "conflict"]);
