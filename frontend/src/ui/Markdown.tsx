// The blocks' explanations and the learning paths' steps are short Markdown: paragraphs,
// lists, **bold**, *italic*, `code`, and fenced blocks (```) for small figures, kept as
// written. Rendered from escaped text, so nothing in them can inject HTML.
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
}

function paragraphs(text: string): string {
  if (!text.trim()) return "";
  return text.trim().split(/\n\s*\n/).map((block) => {
    const lines = block.split("\n");
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      return `<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*[-*] /, ""))}</li>`).join("")}</ul>`;
    }
    return `<p>${inline(lines.join(" "))}</p>`;
  }).join("");
}

/** A fence opens with ``` (and maybe a language) on a line of its own and closes with ```;
 * one left open runs to the end. */
const FENCE = /^```[^\n`]*\n([\s\S]*?)(?:^```[ \t]*$|(?![\s\S]))/gm;

export function markdownToHtml(text: string): string {
  let html = "";
  let at = 0;
  for (const match of text.matchAll(FENCE)) {
    html += paragraphs(text.slice(at, match.index));
    html += `<pre><code>${escapeHtml(match[1].replace(/\n$/, ""))}</code></pre>`;
    at = match.index + match[0].length;
  }
  return html + paragraphs(text.slice(at));
}

export function Markdown({ text }: { text: string }) {
  return <div className="markdown" dangerouslySetInnerHTML={{ __html: markdownToHtml(text) }} />;
}
