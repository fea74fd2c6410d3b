import { describe, expect, it } from "vitest";

import { markdownToHtml } from "./Markdown";

describe("markdownToHtml", () => {
  it("renders headings, lists, bold and code", () => {
    expect(markdownToHtml("# Card\n\n## Dataset\n\n- **Name**: `abc`\n- two")).toBe(
      "<h3>Card</h3><h4>Dataset</h4><ul><li><strong>Name</strong>: <code>abc</code></li><li>two</li></ul>");
  });

  it("keeps HTML as text, whatever a name holds", () => {
    const html = markdownToHtml("# <img src=x onerror=alert(1)>\n\n<script>alert(1)</script> \"q\" & 'a'");
    expect(html).toBe("<h3>&lt;img src=x onerror=alert(1)&gt;</h3>"
      + "<p>&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &amp; &#39;a&#39;</p>");
  });

  it("shows backslash-escaped characters as they are, without formatting", () => {
    expect(markdownToHtml("\\*\\*not bold\\*\\* \\`x\\` \\<b\\> a\\\\b")).toBe(
      "<p>&#42;&#42;not bold&#42;&#42; &#96;x&#96; &#60;b&#62; a&#92;b</p>");
    const div = document.createElement("div");
    div.innerHTML = markdownToHtml("\\<img src=x onerror=alert\\(1\\)\\>");
    expect(div.querySelector("img")).toBeNull();
    expect(div.textContent).toBe("<img src=x onerror=alert(1)>");
  });

  it("cannot be tricked into markup by the characters it holds escapes in", () => {
    const html = markdownToHtml("\u000060\u0001img\u0000 \\<");
    expect(html).toBe("<p>60img &#60;</p>");
  });

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
