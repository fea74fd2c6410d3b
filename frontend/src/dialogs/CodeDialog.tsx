// "Code": the PyTorch the engine generates for the saved version, highlighted, with Copy and
// the downloads (graph JSON, PyTorch, ONNX).
import { useEffect, useMemo, useState } from "react";

import { api } from "../api/client";
import { isDirty, useEditor } from "../store/editor";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine, SaveFirst } from "./common";
import { copyText, errorText } from "./format";
import { tokenizePython } from "./python";

type Format = "json" | "pytorch" | "onnx";

export function CodeDialog() {
  const graph = useEditor((s) => s.graph);
  const readOnly = useEditor((s) => s.readOnly);
  const shareToken = useEditor((s) => s.shareToken);
  const dirty = useEditor(isDirty);

  const shared = readOnly && shareToken !== null;
  const urlFor = (format: Format): string | null =>
    shared ? api.sharedDownloadUrl(shareToken!, format)
      : graph !== null ? api.downloadUrl(graph.id, format, graph.head)
        : null;
  const pytorchUrl = urlFor("pytorch");

  const [code, setCode] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState<boolean | null>(null);

  useEffect(() => {
    if (pytorchUrl === null) return;
    const controller = new AbortController();
    setCode(null);
    setError(null);
    (async () => {
      try {
        const response = await fetch(pytorchUrl, { credentials: "same-origin", signal: controller.signal });
        const text = await response.text();
        if (!response.ok) {
          let message = `HTTP ${response.status}`;
          try {
            const body = JSON.parse(text) as { error?: string };
            if (body && typeof body.error === "string") message = body.error;
          } catch {
            // not JSON: keep the status
          }
          throw new Error(message);
        }
        setCode(text);
      } catch (caught) {
        if ((caught as Error).name === "AbortError") return;
        setError(`The code could not be generated: ${errorText(caught)}`);
      }
    })();
    return () => controller.abort();
  }, [pytorchUrl]);

  useEffect(() => {
    if (copied === null) return;
    const timer = setTimeout(() => setCopied(null), 2000);
    return () => clearTimeout(timer);
  }, [copied]);

  if (pytorchUrl === null || graph === null) {
    return (
      <Modal title="Code" onClose={closeDialog}>
        <SaveFirst what="The code is generated from a saved version." />
      </Modal>
    );
  }

  const downloads = (
    <nav className="code-downloads" aria-label="Downloads">
      <span className="dlg-muted">Download</span>
      <a href={urlFor("json")!} download>Graph JSON</a>
      <a href={pytorchUrl} download>PyTorch</a>
      <a href={urlFor("onnx")!} download>ONNX</a>
    </nav>
  );

  return (
    <Modal
      title="Code"
      onClose={closeDialog}
      size="wide"
      subtitle={`PyTorch for ${graph.name}, version ${graph.head}: a standalone nn.Module, built with seed 0.`}
      footer={
        <>
          {downloads}
          <button type="button" className="btn" disabled={code === null}
            onClick={async () => setCopied(await copyText(code ?? ""))}>
            {copied === true ? "Copied" : copied === false ? "Copy failed" : "Copy"}
          </button>
        </>
      }
    >
      {dirty && !readOnly ? (
        <div className="dlg-note dlg-note-warn code-stale" role="note">
          <span>
            This is the code for the saved version v{graph.head}; your unsaved changes are not in it.
          </span>
          <button type="button" className="btn btn-small" onClick={() => useEditor.getState().openDialog("save")}>
            Save first
          </button>
        </div>
      ) : null}
      <ErrorLine text={error} />
      {code === null && !error ? <p className="dlg-muted">Generating the code…</p> : null}
      {code !== null ? <PythonCode source={code} /> : null}
    </Modal>
  );
}

/** Python source in a <pre>, highlighted by the tiny tokenizer. */
export function PythonCode({ source }: { source: string }) {
  const tokens = useMemo(() => tokenizePython(source), [source]);
  return (
    <pre className="code-view" tabIndex={0} aria-label="Generated PyTorch code" data-testid="code">
      <code>
        {tokens.map((token, i) =>
          token.kind === "text" ? token.text : <span key={i} className={`tok-${token.kind}`}>{token.text}</span>,
        )}
      </code>
    </pre>
  );
}
