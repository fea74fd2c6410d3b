import { describe, expect, it } from "vitest";

import { BLOCKS } from "../test/catalog";
import { matchBlocks } from "./QuickAdd";

describe("searching the catalog", () => {
  it("puts the exact type first, then types that start with the text", () => {
    expect(matchBlocks(BLOCKS, "linear")[0].type).toBe("Linear");
    expect(matchBlocks(BLOCKS, "conv").slice(0, 2).map((b) => b.type)).toEqual(["Conv1d", "Conv2d"]);
  });

  it("finds blocks by their category", () => {
    const norms = BLOCKS.filter((b) => b.category === "Normalization").map((b) => b.type);
    expect(norms).toEqual(expect.arrayContaining(["LayerNorm", "RMSNorm"]));
    expect(matchBlocks(BLOCKS, "normalization").map((b) => b.type)).toEqual(norms);
  });
});
