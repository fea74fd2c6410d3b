// Short Markdown: the blocks' explanations, the learning paths' steps and the model cards.
// Headings (#, ##, ###), paragraphs, lists, **bold**, *italic*, `code`, backslash escapes
// (\* shows a star) and fenced blocks (```) for small figures, kept as written. Rendered
// from escaped text, so nothing in them can inject HTML, and there are no links.
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// An escaped character is kept out of the formatting as \u0000<code point>\u0001, and
// becomes its HTML entity after it.
const HELD = /\u0000(\d+)\u0001/g;

function inline(text: string): string {
  const held = text
    .replace(/[\u0000\u0001]/g, "")
    .replace(/\\([!-/:-@[-`{-~])/g, (_, c: string) => `\u0000${c.charCodeAt(0)}\u0001`);
  return escapeHtml(held)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(HELD, (_, n: string) => `&#${n};`);
}

function paragraphs(text: string): string {
  if (!text.trim()) return "";
  return text.trim().split(/\n\s*\n/).map((block) => {
    const lines = block.split("\n");
    const heading = lines.length === 1 ? /^(#{1,3}) (.*)$/.exec(lines[0]) : null;
    if (heading) {
      const level = heading[1].length + 2; // # -> h3: the card sits inside a page
      return `<h${level}>${inline(heading[2])}</h${level}>`;
    }
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
