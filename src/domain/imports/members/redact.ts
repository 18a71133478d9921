import { normaliseHeader, type ImportKind, type MappingTarget } from "../targets.js";

/** What error reports, samples and logs show instead of a password. */
export const REDACTED = "[redacted]";

/** Headers that look like passwords are hidden even before anyone maps them (a draft's sample is stored at upload). */
const PASSWORD_LIKE = /pass|pwd|secret/;

/** Indexes of the columns of a members file that hold (or may hold) passwords. */
export function passwordColumns(headers: string[], mapping: Record<string, string> | null | undefined): number[] {
  const out: number[] = [];
  headers.forEach((h, i) => {
    const target = mapping?.[h] as MappingTarget | undefined;
    if (target === "password" || PASSWORD_LIKE.test(normaliseHeader(h))) out.push(i);
  });
  return out;
}

/** The sample rows of a draft with password cells replaced; other kinds keep their sample as it is. */
export function redactSample(kind: ImportKind, headers: string[], sample: string[][], mapping: Record<string, string> | null | undefined): string[][] {
  if (kind !== "members") return sample;
  const hidden = passwordColumns(headers, mapping);
  if (hidden.length === 0) return sample;
  return sample.map((row) => row.map((cell, i) => (hidden.includes(i) && cell !== "" ? REDACTED : cell)));
}
