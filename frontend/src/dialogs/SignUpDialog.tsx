// For a visitor without an account: the one dialog that Save (Ctrl/Cmd+S too), Share,
// Versions, Run and the like open. Its links come back to this editor, where the drawing is
// saved as the new account's first model (store/claim.ts).
import { useAccount } from "../store/account";
import { claimUrl } from "../store/claim";
import { keepForClaim } from "../store/session";
import { Modal } from "../ui/Modal";
import { closeDialog } from "./common";

export const SIGN_UP_TITLE = "Sign up to save, share or run — your drawing comes with you";

export function SignUpDialog() {
  const signupUrl = useAccount((s) => s.signupUrl);
  const loginUrl = useAccount((s) => s.loginUrl);
  const here = { pathname: window.location.pathname, search: window.location.search };
  return (
    <Modal
      title={SIGN_UP_TITLE}
      onClose={closeDialog}
      testId="signup-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={closeDialog}>Keep drawing</button>
          <a className="btn" href={claimUrl(loginUrl, here)} onClick={keepForClaim}>Log in</a>
          <a className="btn btn-primary" data-autofocus href={claimUrl(signupUrl, here)} onClick={keepForClaim}>
            Sign up
          </a>
        </>
      }
    >
      <p>
        Everything you draw here works without an account, and stays in this browser. Saving it, sharing
        it by link and training it need one: after you sign up or log in you come back here, and this
        drawing is saved as your model.
      </p>
    </Modal>
  );
}
