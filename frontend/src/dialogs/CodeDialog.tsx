// "Code": the PyTorch the engine generates for the saved version, highlighted, with Copy and
// the downloads (graph JSON, PyTorch, ONNX).
import { useEffect, useMemo, useRef, useState } from "react";

import { api, fetchFile } from "../api/client";
import { isDirty, useEditor } from "../store/editor";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine, SaveFirst } from "./common";
import { copyText, errorText } from "./format";
import { tokenizePython } from "./python";

type Format = "json" | "pytorch" | "onnx";

const TITLES: Record<Format, string> = { json: "Graph JSON", pytorch: "PyTorch", onnx: "ONNX" };

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
  const [preparing, setPreparing] = useState<number | null>(null);
  const [copied, setCopied] = useState<boolean | null>(null);

  useEffect(() => {
    if (pytorchUrl === null) return;
    const controller = new AbortController();
    setCode(null);
    setError(null);
    setPreparing(null);
    (async () => {
      try {
        // The server makes the file in a child process: 503 with Retry-After until it is ready.
        const { blob } = await fetchFile(pytorchUrl, {
          signal: controller.signal, onPreparing: (seconds) => setPreparing(seconds),
        });
        setCode(await blob.text());
        setPreparing(null);
      } catch (caught) {
        if ((caught as Error).name === "AbortError") return;
        setPreparing(null);
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
      <MadeFileLink url={pytorchUrl} format="pytorch" />
      <MadeFileLink url={urlFor("onnx")!} format="onnx" />
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
      {code === null && !error ? (
        <p className="dlg-muted" role="status">
          {preparing === null ? "Generating the code…"
            : `Preparing the PyTorch file… (asking again in ${preparing} s)`}
        </p>
      ) : null}
      {code !== null ? <PythonCode source={code} /> : null}
    </Modal>
  );
}

/** A download of a file the server makes on demand: a click fetches it, asking again while
 * the server answers 503 (the link says "Preparing…"), then saves it. The href stays for
 * "open in new tab" and the like, which get the 503's JSON when the file is not ready. */
function MadeFileLink({ url, format }: { url: string; format: Format }) {
  const [state, setState] = useState<"idle" | "preparing" | "failed">("idle");
  const [error, setError] = useState<string | null>(null);
  const controller = useRef<AbortController | null>(null);
  useEffect(() => () => controller.current?.abort(), []);
  useEffect(() => {
    controller.current?.abort();
    setState("idle");
    setError(null);
  }, [url]);

  const download = async () => {
    if (state === "preparing") return;
    const mine = new AbortController();
    controller.current = mine;
    setState("preparing");
    setError(null);
    try {
      const { blob, filename } = await fetchFile(url, { signal: mine.signal });
      saveBlob(blob, filename ?? `model.${format === "onnx" ? "onnx" : "py"}`);
      setState("idle");
    } catch (caught) {
      if ((caught as Error).name === "AbortError") return;
      setState("failed");
      setError(`${TITLES[format]}: ${errorText(caught)}`);
    }
  };

  return (
    <>
      <a href={url} download aria-busy={state === "preparing"} title={error ?? undefined}
        onClick={(event) => {
          event.preventDefault();
          void download();
        }}>
        {state === "preparing" ? `Preparing ${TITLES[format]}…` : TITLES[format]}
      </a>
      {error ? <span className="dlg-error" role="alert">{error}</span> : null}
    </>
  );
}

function saveBlob(blob: Blob, filename: string): void {
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 0);
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
