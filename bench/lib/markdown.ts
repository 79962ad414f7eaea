/** A GitHub-flavoured markdown table; numbers right-aligned, missing cells empty. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): string {
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((r) => r[c] === undefined || typeof r[c] === "number"));
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [
    line([...headers]),
    line(headers.map((_, c) => (numeric[c] ? "---:" : "---"))),
    ...rows.map((r) => line(headers.map((_, c) => String(r[c] ?? "").replaceAll("|", "\\|")))),
  ].join("\n");
}
