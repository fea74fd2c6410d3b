// The editor's dialogs: whichever one `useEditor(s => s.dialog)` names. Mount <Dialogs />
// and <NoticeBar /> once, anywhere in the app.
import { NEEDS_ACCOUNT, useAccount } from "../store/account";
import { useEditor } from "../store/editor";
import { CodeDialog } from "./CodeDialog";
import { ConflictDialog } from "./ConflictDialog";
import { ImportDialog } from "./ImportDialog";
import { RenameDialog } from "./RenameDialog";
import { SaveDialog } from "./SaveDialog";
import { ShareDialog } from "./ShareDialog";
import { ShortcutsDialog } from "./ShortcutsDialog";
import { SignUpDialog } from "./SignUpDialog";
import { UpdateBlockDialog } from "./UpdateBlockDialog";
import { VersionsDialog } from "./VersionsDialog";
import "./dialogs.css";

export { NoticeBar } from "./NoticeBar";

export function Dialogs() {
  const dialog = useEditor((s) => s.dialog);
  const loggedIn = useAccount((s) => s.loggedIn);
  // A visitor without an account is asked to sign up, whatever needed one.
  if (dialog !== null && !loggedIn && NEEDS_ACCOUNT.has(dialog)) return <SignUpDialog />;
  switch (dialog) {
    case "signup":
      return <SignUpDialog />;
    case "save":
      return <SaveDialog />;
    case "versions":
      return <VersionsDialog />;
    case "share":
      return <ShareDialog />;
    case "code":
      return <CodeDialog />;
    case "shortcuts":
      return <ShortcutsDialog />;
    case "conflict":
      return <ConflictDialog />;
    case "rename":
      return <RenameDialog />;
    case "import":
      return <ImportDialog />;
    case "update-block":
      return <UpdateBlockDialog />;
    default:
      return null;
  }
}
