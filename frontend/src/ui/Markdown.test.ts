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
});
