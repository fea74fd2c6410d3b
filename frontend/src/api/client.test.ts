// fetchFile's retry loop against a stubbed fetch: the loop is the unit here; the server side of
// 503 and Retry-After is tested in tests/builder/test_downloads.py.
import { afterEach, describe, expect, it, vi } from "vitest";

import { ApiError, fetchFile, retryAfter } from "./client";

const preparing = (seconds: string | null) =>
  new Response(JSON.stringify({ error: "the ONNX file is being prepared; try again in 2 s", retry_after: 2, busy: false }), {
    status: 503,
    headers: seconds === null ? {} : { "Retry-After": seconds, "Content-Type": "application/json" },
  });
const file = () =>
  new Response("onnx-bytes", { status: 200, headers: { "Content-Disposition": 'attachment; filename="mlp-v2.onnx"' } });

afterEach(() => vi.unstubAllGlobals());

describe("fetchFile", () => {
  it("asks again after each 503's Retry-After until the file comes, and says it waits", async () => {
    const fetchMock = vi.fn()
      .mockResolvedValueOnce(preparing("2"))
      .mockResolvedValueOnce(preparing("3"))
      .mockResolvedValueOnce(file());
    vi.stubGlobal("fetch", fetchMock);
    const slept: number[] = [];
    const waits: number[] = [];
    const { blob, filename } = await fetchFile("/api/graphs/7/download?format=onnx", {
      sleep: async (ms) => void slept.push(ms),
      onPreparing: (seconds) => waits.push(seconds),
    });
    expect(await blob.text()).toBe("onnx-bytes");
    expect(filename).toBe("mlp-v2.onnx");
    expect(fetchMock).toHaveBeenCalledTimes(3);
    expect(slept).toEqual([2000, 3000]);
    expect(waits).toEqual([2, 3]);
  });

  it("gives up with the API's error on a refusal, and on a 503 that says nothing of retrying", async () => {
    const refused = new Response(JSON.stringify({
      error: "exporting this model took longer than 60 s (SHIPYARD_EXPORT_SECONDS)", reason: "time",
    }), { status: 422 });
    vi.stubGlobal("fetch", vi.fn().mockResolvedValueOnce(refused));
    const error = await fetchFile("/x", { sleep: async () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).body.reason).toBe("time");
    expect((error as ApiError).message).toContain("longer than 60 s");

    vi.stubGlobal("fetch", vi.fn().mockResolvedValueOnce(preparing(null)));
    const bare = await fetchFile("/x", { sleep: async () => {} }).catch((e: unknown) => e);
    expect((bare as ApiError).status).toBe(503);
  });

  it("stops waiting when aborted", async () => {
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(preparing("30")));
    const controller = new AbortController();
    const pending = fetchFile("/x", { signal: controller.signal, onPreparing: () => controller.abort() });
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });

  it("reads Retry-After as whole seconds within reason", () => {
    expect(retryAfter("2")).toBe(2);
    expect(retryAfter("0")).toBe(1);
    expect(retryAfter("0.2")).toBe(1);
    expect(retryAfter("86400")).toBe(60);
    expect(retryAfter("Wed, 21 Oct 2015 07:28:00 GMT")).toBe(5);
    expect(retryAfter(null)).toBeNull();
  });
});
