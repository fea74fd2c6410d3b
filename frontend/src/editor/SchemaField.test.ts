import { describe, expect, it } from "vitest";

import { checkChoices, formatValue, parseField, type FieldSchema } from "./SchemaField";

const nullableNumber: FieldSchema = { anyOf: [{ type: "number", exclusiveMinimum: 0 }, { type: "null" }], default: 1 };
const whole: FieldSchema = { type: "integer", minimum: 1, maximum: 10, default: 3 };

describe("a block's parameters", () => {
  it("take blank as the default, and as null where null is allowed", () => {
    expect(parseField("", whole)).toEqual({ ok: true, value: undefined });
    expect(parseField(" ", nullableNumber)).toEqual({ ok: true, value: null });
    expect(parseField("none", nullableNumber).ok).toBe(false);
    expect(formatValue(null)).toBe("");
  });

  it("refuse what the schema refuses, saying why", () => {
    expect(parseField("11", whole)).toEqual({ ok: false, error: "expected must be at most 10" });
    expect(parseField("2.5", whole)).toEqual({ ok: false, error: "expected must be a whole number" });
    expect(parseField("0", nullableNumber)).toEqual({ ok: false, error: "expected must be more than 0" });
  });
});

describe("a run's settings", () => {
  it("take blank as the server's default even where null is allowed, and none as null", () => {
    expect(parseField("", nullableNumber, "settings")).toEqual({ ok: true, value: undefined });
    expect(parseField("None", nullableNumber, "settings")).toEqual({ ok: true, value: null });
    expect(parseField("0.5", nullableNumber, "settings")).toEqual({ ok: true, value: 0.5 });
    expect(parseField("many", whole, "settings")).toEqual({ ok: false, error: "expected a number" });
    expect(formatValue(null, "settings")).toBe("none");
  });
});

describe("a list of names typed (a Split's ports)", () => {
  const names: FieldSchema = { type: "array", items: { type: "string" }, minItems: 2, maxItems: 8, default: ["a", "b"] };

  it("splits at commas and spaces and keeps the names as text", () => {
    expect(parseField("q, k, v", names)).toEqual({ ok: true, value: ["q", "k", "v"] });
    expect(parseField("[left right]", names)).toEqual({ ok: true, value: ["left", "right"] });
    expect(formatValue(["q", "k", "v"])).toBe("q, k, v");
  });

  it("counts them against the schema", () => {
    expect(parseField("q", names)).toEqual({ ok: false, error: "expected at least 2 names" });
    expect(parseField("a b c d e f g h i", names)).toEqual({ ok: false, error: "expected at most 8 names" });
  });
});

describe("a list of names (checkboxes)", () => {
  const backends: FieldSchema = { type: "array", items: { type: "string", enum: ["eager", "compile", "onnxruntime"] }, minItems: 1 };

  it("keeps the schema's order whatever order they were checked in, and refuses none", () => {
    expect(checkChoices(["onnxruntime", "eager"], backends)).toEqual({ ok: true, value: ["eager", "onnxruntime"] });
    expect(checkChoices(["bogus"], backends)).toEqual({ ok: false, error: "needs at least one" });
    expect(checkChoices([], { ...backends, minItems: 2 })).toEqual({ ok: false, error: "needs at least 2" });
  });

  it("while a list of whole numbers is typed, comma-separated", () => {
    const sizes: FieldSchema = { type: "array", items: { type: "integer", minimum: 1 }, minItems: 1 };
    expect(parseField("1, 4", sizes, "settings")).toEqual({ ok: true, value: [1, 4] });
    expect(parseField("1, 0", sizes, "settings")).toEqual({ ok: false, error: "expected each entry must be at least 1" });
  });
});
