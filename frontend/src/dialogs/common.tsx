// Pieces the dialogs share.
import { useEditor } from "../store/editor";

export function closeDialog(): void {
  useEditor.getState().openDialog(null);
}

/** For a model that was never saved: say why, and offer the Save dialog. */
export function SaveFirst({ what }: { what: string }) {
  return (
    <div className="dlg-empty">
      <p>
        This model has not been saved yet. {what}
      </p>
      <button type="button" className="btn btn-primary" onClick={() => useEditor.getState().openDialog("save")}>
        Save
      </button>
    </div>
  );
}

export function ErrorLine({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p className="dlg-error" role="alert">
      {text}
    </p>
  );
}
