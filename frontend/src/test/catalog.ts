// A block catalog for unit tests: the real one is served by the API from the engine; the
// tests need only the ports and the Repeat flag, written here for the blocks they use.
import type { Block } from "../api/types";

function block(type: string, inputs: string[], outputs: string[], category = "Layers", holds = false): Block {
  return {
    type, category, summary: `${type} summary`, explanation: `**${type}** explained`,
    inputs, outputs, holds_graph: holds, params_schema: { type: "object", properties: {} },
  } as unknown as Block;
}

export const BLOCKS: Block[] = [
  block("Input", [], ["out"], "Inputs & outputs"),
  block("Output", ["in"], [], "Inputs & outputs"),
  block("Linear", ["in"], ["out"]),
  block("ReLU", ["in"], ["out"], "Activations"),
  block("LayerNorm", ["in"], ["out"], "Normalization"),
  block("Add", ["a", "b"], ["out"], "Merge"),
  block("Repeat", ["in"], ["out"], "Structure", true),
];

export const CATALOG = Object.fromEntries(BLOCKS.map((b) => [b.type, b]));
