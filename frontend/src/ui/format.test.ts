import { describe, expect, it } from "vitest";

import { bytes, compact, flops, shape } from "./format";

describe("numbers as the editor writes them", () => {
  it("writes counts with a unit and three significant digits", () => {
    expect(compact(650)).toBe("650");
    expect(compact(8320)).toBe("8.32 k");
    expect(compact(834_304)).toBe("834 k");
    expect(compact(163_100_000)).toBe("163 M");
    expect(compact(null)).toBe("–");
  });

  it("writes FLOPs with their unit, also when there are none", () => {
    expect(flops(111_149_056)).toBe("111 MFLOPs");
    expect(flops(0)).toBe("0 FLOPs");
  });

  it("writes bytes in binary units and shapes with the batch", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(5_598_720)).toBe("5.3 MiB");
    expect(shape({ shape: ["B", 64, 128] })).toBe("[B, 64, 128]");
  });
});
