// The API's types, generated from its OpenAPI document (schema.d.ts, made by `make`), under
// short names. Nothing here is typed by hand: change the API's schema instead.
import type { components } from "./schema";

type S = components["schemas"];

export type GraphDocument = S["GraphDocument"];
export type NestedGraph = S["NestedGraph"];
export type GraphNode = S["GraphNode"];
export type GraphEdge = S["GraphEdge"];
export type BlockType = GraphNode["type"];

export type GraphOut = S["GraphOut"];
export type GraphDetail = S["GraphDetailOut"];
export type Version = S["VersionOut"];
export type VersionDetail = S["VersionDetailOut"];
export type SaveResult = S["SaveOut"];
export type Share = S["ShareOut"];
export type ShareCreated = S["ShareCreatedOut"];
export type Shared = S["SharedOut"];

export type InspectReport = S["InspectReport"];
export type NodeReport = S["NodeReport"];
export type TensorSpec = S["TensorSpec"];
export type Problem = S["Problem"];
export type Totals = S["InspectTotals"];
export type Block = S["Block"];
export type BlockCatalog = S["BlockCatalog"];
export type Starter = S["Starter"];

export type Job = S["Job"];
export type JobEvent = S["JobEvent"];
export type StatusEvent = S["StatusEvent"];
export type MetricEvent = S["MetricEvent"];
export type AttentionEvent = S["AttentionEvent"];
export type SampleEvent = S["SampleEvent"];
export type ProgressEvent = S["ProgressEvent"];
export type BenchmarkEvent = S["BenchmarkEvent"];
export type NodeCostsEvent = S["NodeCostsEvent"];
export type BenchmarkResult = S["BenchmarkResult"];
export type BenchmarkRow = BenchmarkResult["rows"][number];
export type Machine = BenchmarkResult["machine"];
export type RunStatus = Job["status"];
export type NonFinite = NonNullable<MetricEvent["nonfinite"]>;
export type EventPage = S["EventPage"];
export type Dataset = S["Dataset"];
export type Upload = S["Upload"];
export type ModelCard = S["ModelCard"];

/** A run's dataset manifest (GET /api/jobs/{id}/manifest): MLCommons Croissant JSON-LD with
 * Shipyard's fields; the members the editor shows (compute/engine/manifest.py makes it). */
export interface DatasetManifest {
  name: string;
  description: string;
  license: string;
  url?: string;
  citeAs?: string;
  "shipyard:source": string;
  "shipyard:task": string;
  "shipyard:samples": number;
  "shipyard:characters"?: number;
  "shipyard:sizeBytes": number;
  "shipyard:sha256": string;
  "shipyard:sha256Of": string;
  "shipyard:vocabulary"?: string[];
  "shipyard:vocabularyOf"?: string;
  "shipyard:split": { rule: string; train: number; validation: number; unit: string };
  "shipyard:preprocessing": string[];
  [key: string]: unknown;
}
export type RunKind = S["RunKind"];
export type RunCheck = S["RunCheck"];
export type EdgeValues = S["EdgeValues"];
export type EdgeStats = EdgeValues["edges"][string];
export type NextChars = S["NextChars"];
export type SqlResult = S["SqlResult"];
export type GraphSqlResult = S["GraphSqlResult"];
export type JobSqlResult = S["JobSqlResult"];
export type SqlStatement = S["SqlStatement"];
export type SqlChange = S["SqlChange"];
export type SqlEdge = S["SqlEdge"];
export type SqlDerived = S["DerivedModel"];
export type SqlErrorBody = S["SqlErrorBody"];
export type SqlSchema = S["SqlSchema"];
export type SqlTable = SqlSchema["tables"][string];
export type SqlColumn = S["SqlColumn"];
export type SqlExample = SqlSchema["examples"][number];
export type MyBlock = S["MyBlock"];
export type CustomBlock = S["CustomBlock"];
export type BlockPort = S["BlockPort"];

export type PathSummary = S["PathSummary"];
export type GuidedPath = S["GuidedPath"];
export type PathStep = S["PathStep"];
export type StepCheck = S["StepCheck"];
export type PathProgress = S["PathProgress"];
