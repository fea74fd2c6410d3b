// The run kinds as GET /api/run-kinds serves them, for unit tests: the example of component
// RunKind in the API's OpenAPI document, which the server makes from its settings models
// (compute/engine/training.py TrainConfig, with the default limits). No second copy here.
import openapi from "../api/openapi.json";
import type { RunKind } from "../api/types";

export const RUN_KINDS: RunKind[] = [openapi.components.schemas.RunKind.example as RunKind];
