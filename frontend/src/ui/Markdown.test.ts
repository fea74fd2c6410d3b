import { describe, expect, it } from "vitest";

import { markdownToHtml } from "./Markdown";

describe("markdownToHtml", () => {
  it("renders paragraphs, lists and inline marks from escaped text", () => {
    expect(markdownToHtml("A **bold** `x<y`\nline.\n\n- one\n- *two*")).toBe(
      "<p>A <strong>bold</strong> <code>x&lt;y</code> line.</p><ul><li>one</li><li><em>two</em></li></ul>");
    expect(markdownToHtml("<img src=x onerror=alert(1)>")).toBe("<p>&lt;img src=x onerror=alert(1)&gt;</p>");
  });

  it("keeps a fenced figure as written: its lines, blank ones, spaces and marks untouched", () => {
    const text = "Before.\n\n```text\nstream --+--> **Add**\n\n   '--<b>'\n```\nAfter.";
    expect(markdownToHtml(text)).toBe(
      "<p>Before.</p><pre><code>stream --+--&gt; **Add**\n\n   &#39;--&lt;b&gt;&#39;</code></pre><p>After.</p>");
  });

  it("runs a fence left open to the end of the text", () => {
    expect(markdownToHtml("Look:\n```\na  b")).toBe("<p>Look:</p><pre><code>a  b</code></pre>");
  });
});
