import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ROOT } from "./stack.js";

/** One measured figure beside its baseline and target; `figure: null` marks a measurement not taken, never a guess. */
export interface Row {
  what: string;
  figure: string | null;
  baseline: string;
  ratio?: number;
  target: string;
  met?: boolean;
}

export interface Section {
  title: string;
  rows: Row[];
  notes: string[];
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

export function renderSections(header: string[], sections: Section[]): string {
  const out: string[] = [...header, ""];
  for (const s of [...sections].sort((a, b) => a.title.localeCompare(b.title))) {
    out.push(`### ${s.title}`, "", "| measure | figure | baseline | ratio | target | met |", "|---|---|---|---|---|---|");
    for (const r of s.rows) {
      const met = r.figure === null ? "not measured" : r.met === undefined ? "" : r.met ? "yes" : "**no**";
      out.push(`| ${r.what} | ${r.figure ?? "not measured yet"} | ${r.baseline} | ${r.ratio === undefined ? "" : r.ratio.toFixed(2) + "×"} | ${r.target} | ${met} |`);
    }
    out.push("");
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length) out.push("");
  }
  return out.join("\n");
}

/** Replaces the generated block of BENCHMARKS.md (between the markers), leaving the hand-written analysis alone. */
export async function writeBenchmarksMd(block: string, file = path.join(ROOT, "BENCHMARKS.md")): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    text = `# Benchmarks\n\n${START}\n${END}\n`;
  }
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  const next = a >= 0 && b > a ? text.slice(0, a + START.length) + "\n" + block + "\n" + text.slice(b) : `${text}\n${START}\n${block}\n${END}\n`;
  await writeFile(file, next);
  return file;
}
