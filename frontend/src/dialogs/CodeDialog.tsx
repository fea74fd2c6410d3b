// "Code": the PyTorch the engine generates for the saved version, highlighted, with Copy and
// the downloads (graph JSON, PyTorch, ONNX); for a model never saved (a visitor's drawing
// too), the code of the drawing itself.
import { useEffect, useMemo, useRef, useState } from "react";

import { api, ApiError, fetchFile } from "../api/client";
import { isDirty, modelTitle, useEditor } from "../store/editor";
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

  if (graph === null && !shared) return <DrawingCode />;
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

/** The code of a model never saved (a visitor's drawing, a new model): made from the
 * document on screen (POST /api/code), with Copy and the files made here. */
function DrawingCode() {
  const doc = useEditor((s) => s.doc);
  const title = useEditor(modelTitle);
  const [code, setCode] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState<boolean | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setCode(null);
    setError(null);
    api.code(doc, controller.signal).then(
      (made) => setCode(made.code),
      (caught: unknown) => {
        if ((caught as Error).name === "AbortError") return;
        const problems = caught instanceof ApiError ? caught.body.problems ?? [] : [];
        const first = problems[0];
        setError(problems.length
          ? `The code is made from a valid graph; this one has ${problems.length} problem(s)` +
            (first ? ` (first: ${first.node ? first.node + ": " : ""}${first.message})` : "") + "."
          : `The code could not be generated: ${errorText(caught)}`);
      },
    );
    return () => controller.abort();
  }, [doc]);

  useEffect(() => {
    if (copied === null) return;
    const timer = setTimeout(() => setCopied(null), 2000);
    return () => clearTimeout(timer);
  }, [copied]);

  const stem = title.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").toLowerCase() || "model";
  return (
    <Modal
      title="Code"
      onClose={closeDialog}
      size="wide"
      subtitle={`PyTorch for ${title}, as drawn (not saved): a standalone nn.Module, built with seed 0.`}
      footer={
        <>
          <nav className="code-downloads" aria-label="Downloads">
            <span className="dlg-muted">Download</span>
            <a href="#graph-json" onClick={(event) => {
              event.preventDefault();
              saveBlob(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }), `${stem}.json`);
            }}>Graph JSON</a>
            {code !== null ? (
              <a href="#pytorch" onClick={(event) => {
                event.preventDefault();
                saveBlob(new Blob([code], { type: "text/x-python" }), `${stem}.py`);
              }}>PyTorch</a>
            ) : null}
          </nav>
          <button type="button" className="btn" disabled={code === null}
            onClick={async () => setCopied(await copyText(code ?? ""))}>
            {copied === true ? "Copied" : copied === false ? "Copy failed" : "Copy"}
          </button>
        </>
      }
    >
      <ErrorLine text={error} />
      {code === null && !error ? <p className="dlg-muted" role="status">Generating the code…</p> : null}
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
