// Every call the editor makes to the REST API goes through `api`: JSON in and out, the CSRF
// token on unsafe methods, and one error type that carries the API's error body.
import type {
  BlockCatalog, CustomBlock, Dataset, DatasetManifest, EdgeValues, EventPage, GraphDetail, GraphDocument, GraphOut, InspectReport, Job,
  ModelCard, MyBlock, NextChars, RunCheck, RunKind, SaveResult, Share, ShareCreated, Shared, Starter, Upload, Version, VersionDetail,
} from "./types";

export interface ErrorBody {
  error: string;
  problems?: { message: string; node: string | null; field: string | null }[];
  fields?: Record<string, string[]>;
  current_version?: Version;
  /** An ONNX import's operators that map onto no block: op -> how many. */
  unmapped?: Record<string, number>;
  [key: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: ErrorBody;

  constructor(status: number, body: ErrorBody) {
    super(body.error);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  init: { signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  // A form (a file upload) sets its own multipart Content-Type, boundary included.
  const isForm = body instanceof FormData;
  if (body !== undefined && !isForm) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
      credentials: "same-origin",
      signal: init.signal,
    });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ApiError(0, { error: `the server could not be reached (${(error as Error).message})` });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const errorBody =
      parsed && typeof parsed === "object" && "error" in parsed
        ? (parsed as ErrorBody)
        : { error: `${method} ${path} failed with HTTP ${response.status}` };
    throw new ApiError(response.status, errorBody);
  }
  return parsed as T;
}

/** A file the server makes on demand (a PyTorch or ONNX download): while it is being made the
 * server answers 503 with Retry-After, and this asks again after that long, telling
 * `onPreparing` the seconds it waits, until the file comes, the server refuses, or `signal`
 * aborts. `sleep` is there for tests. */
export async function fetchFile(
  path: string,
  init: {
    signal?: AbortSignal;
    onPreparing?: (seconds: number, body: ErrorBody) => void;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  } = {},
): Promise<{ blob: Blob; filename: string | null }> {
  const sleep = init.sleep ?? abortableSleep;
  for (;;) {
    let response: Response;
    try {
      response = await fetch(path, { credentials: "same-origin", signal: init.signal });
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      throw new ApiError(0, { error: `the server could not be reached (${(error as Error).message})` });
    }
    if (response.ok) {
      return { blob: await response.blob(), filename: attachmentName(response.headers.get("Content-Disposition")) };
    }
    const text = await response.text();
    let body: ErrorBody = { error: `GET ${path} failed with HTTP ${response.status}` };
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && "error" in parsed) body = parsed as ErrorBody;
    } catch {
      // not JSON: keep the status
    }
    const retry = response.status === 503 ? retryAfter(response.headers.get("Retry-After")) : null;
    if (retry === null) throw new ApiError(response.status, body);
    init.onPreparing?.(retry, body);
    await sleep(retry * 1000, init.signal);
  }
}

/** Seconds from a Retry-After header: at least 1, at most a minute, 5 for a date (the API
 * sends seconds). Null when there is none: such a 503 is an error, not a file being made. */
export function retryAfter(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header.trim());
  if (!Number.isFinite(seconds)) return 5;
  return Math.min(60, Math.max(1, Math.ceil(seconds)));
}

function attachmentName(header: string | null): string | null {
  const match = header?.match(/filename="([^"]+)"/);
  return match ? match[1] : null;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException("Aborted", "AbortError"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DOMException("Aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const q = (params: Record<string, string | number | undefined>) => {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries.map(([k, v]) => [k, String(v)])) : "";
};

/** The API, one function per endpoint the editor uses (see docs/api.md). */
export const api = {
  blocks: () => request<BlockCatalog>("GET", "/api/blocks"),
  starters: () => request<Starter[]>("GET", "/api/starters"),
  myBlocks: () => request<MyBlock[]>("GET", "/api/blocks/mine"),
  customBlock: (source: string, version?: number) =>
    request<CustomBlock>("GET", `/api/blocks/custom${q({ source, version })}`),
  inspect: (document: GraphDocument, signal?: AbortSignal) =>
    request<InspectReport>("POST", "/api/inspect", document, { signal }),
  /** The PyTorch file of any document, saved or not (400 with `problems` if not valid). */
  code: (document: GraphDocument, signal?: AbortSignal) =>
    request<{ code: string }>("POST", "/api/code", document, { signal }),

  graphs: () => request<GraphOut[]>("GET", "/api/graphs"),
  graph: (id: number) => request<GraphDetail>("GET", `/api/graphs/${id}`),
  createGraph: (body: { document?: GraphDocument; starter?: string; name?: string; message?: string }) =>
    request<GraphDetail>("POST", "/api/graphs", body),
  /** A new graph from an ONNX file; 400 lists `problems` and `unmapped` operators. */
  importOnnx: (file: File, name?: string) => {
    const form = new FormData();
    form.append("file", file);
    if (name) form.append("name", name);
    return request<GraphDetail>("POST", "/api/graphs/import", form);
  },
  renameGraph: (id: number, name: string) => request<GraphOut>("PATCH", `/api/graphs/${id}`, { name }),
  save: (id: number, document: GraphDocument, baseVersion: number, message?: string) =>
    request<SaveResult>("POST", `/api/graphs/${id}/versions`, {
      document, base_version: baseVersion, ...(message ? { message } : {}),
    }),
  versions: (id: number) => request<Version[]>("GET", `/api/graphs/${id}/versions`),
  version: (id: number, number: number) =>
    request<VersionDetail>("GET", `/api/graphs/${id}/versions/${number}`),
  restore: (id: number, number: number, baseVersion?: number) =>
    request<SaveResult>("POST", `/api/graphs/${id}/versions/${number}/restore`,
      baseVersion === undefined ? {} : { base_version: baseVersion }),
  shares: (id: number) => request<Share[]>("GET", `/api/graphs/${id}/share`),
  share: (id: number, version?: number) =>
    request<ShareCreated>("POST", `/api/graphs/${id}/share`, version === undefined ? {} : { version }),
  revokeShare: (id: number, linkId: number) =>
    request<void>("DELETE", `/api/graphs/${id}/share/${linkId}`),
  downloadUrl: (id: number, format: "json" | "pytorch" | "onnx" | "weights", version?: number) =>
    `/api/graphs/${id}/download${q({ format, version })}`,

  shared: (token: string) => request<Shared>("GET", `/api/shared/${token}`),
  fork: (token: string) => request<GraphDetail>("POST", `/api/shared/${token}/fork`),
  sharedDownloadUrl: (token: string, format: "json" | "pytorch" | "onnx") =>
    `/api/shared/${token}/download${q({ format })}`,
  sharedJobs: (token: string) => request<Job[]>("GET", `/api/shared/${token}/jobs`),

  datasets: () => request<Dataset[]>("GET", "/api/datasets"),
  runKinds: () => request<RunKind[]>("GET", "/api/run-kinds"),
  uploads: () => request<Upload[]>("GET", "/api/uploads"),
  jobs: (graph?: number, kind?: "train" | "benchmark" | "fpga") => request<Job[]>("GET", `/api/jobs${q({ graph, kind })}`),
  job: (id: number, share?: string) => request<Job>("GET", `/api/jobs/${id}${q({ share })}`),
  startJob: (body: {
    graph: number; version?: number; dataset?: string; upload?: number;
    dataset_options?: Record<string, unknown>; config?: Record<string, unknown>;
    kind?: "train" | "benchmark" | "fpga"; weights?: number;
  }) => request<Job>("POST", "/api/jobs", body),
  checkJob: (body: {
    document: GraphDocument; dataset?: string; upload?: number;
    dataset_options?: Record<string, unknown>; config?: Record<string, unknown>;
    kind?: "train" | "benchmark" | "fpga"; weights?: number;
  }, signal?: AbortSignal) => request<RunCheck>("POST", "/api/jobs/check", body, { signal }),
  cancelJob: (id: number) => request<Job>("POST", `/api/jobs/${id}/cancel`),
  publishJob: (id: number, published: boolean) => request<Job>("PATCH", `/api/jobs/${id}`, { published }),
  events: (id: number, since: number, share?: string, types?: string) =>
    request<EventPage>("GET", `/api/jobs/${id}/metrics${q({ since, share, types })}`),
  /** What flows on every edge for the run's validation example (docs/runs.md). */
  jobEdges: (id: number, share?: string) => request<EdgeValues>("GET", `/api/jobs/${id}/edges${q({ share })}`),
  /** A character model's next characters after `prompt`, and where each head looked. */
  jobNext: (id: number, prompt: string, share?: string, signal?: AbortSignal) =>
    request<NextChars>("POST", `/api/jobs/${id}/next${q({ share })}`, { prompt }, { signal }),
  jobDownloadUrl: (id: number, format: string, share?: string) =>
    `/api/jobs/${id}/download${q({ format, share })}`,
  /** A training run's dataset manifest (Croissant JSON-LD); 404 when it recorded none. */
  jobManifest: (id: number, share?: string) =>
    request<DatasetManifest>("GET", `/api/jobs/${id}/manifest${q({ share })}`),
  jobManifestUrl: (id: number, share?: string) => `/api/jobs/${id}/manifest${q({ download: 1, share })}`,
  jobCard: (id: number, share?: string) => request<ModelCard>("GET", `/api/jobs/${id}/card${q({ share })}`),
  /** Upload a CSV or a text; its source and licence are optional ("not declared"). */
  createUpload: (file: File, fields: { task?: string; target?: string; source?: string; licence?: string } = {}) => {
    const form = new FormData();
    form.append("file", file);
    for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
    return request<Upload>("POST", "/api/uploads", form);
  },
};
