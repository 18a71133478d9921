import { isSecretHeader } from "../secrets.js";
import { normaliseHeader, type ImportKind, type MappingTarget } from "../targets.js";

/** What error reports, samples and logs show instead of a password. */
export const REDACTED = "[redacted]";

/** Headers that look like passwords are hidden even before anyone maps them (a draft's sample is stored at upload). */
const PASSWORD_LIKE = /pass|pwd|secret/;

/**
 * Indexes of the columns of a members file that hold (or may hold) passwords: the one mapped to password, any
 * header that looks like one, and any column nobody recognised (it may be mapped to password later, and the
 * sample is stored at upload).
 */
export function passwordColumns(headers: string[], mapping: Record<string, string> | null | undefined): number[] {
  const out: number[] = [];
  headers.forEach((h, i) => {
    const target = (mapping?.[h] ?? "ignore") as MappingTarget;
    if (target === "password" || target === "ignore" || PASSWORD_LIKE.test(normaliseHeader(h)) || isSecretHeader(h)) out.push(i);
  });
  return out;
}

/**
 * Indexes of the columns whose cells are never shown (samples, error reports): password columns of a members file,
 * secret-looking headers (isSecretHeader) of any other kind.
 */
export function hiddenColumns(kind: ImportKind, headers: string[], mapping: Record<string, string> | null | undefined): number[] {
  if (kind === "members") return passwordColumns(headers, mapping);
  return headers.flatMap((h, i) => (isSecretHeader(h) ? [i] : []));
}

/** The sample rows of a draft with secret cells replaced. */
export function redactSample(kind: ImportKind, headers: string[], sample: string[][], mapping: Record<string, string> | null | undefined): string[][] {
  const hidden = hiddenColumns(kind, headers, mapping);
  if (hidden.length === 0) return sample;
  // In a ragged row the password may sit in any column: nothing of it is shown.
  return sample.map((row) => row.map((cell, i) => ((hidden.includes(i) || row.length !== headers.length) && cell !== "" ? REDACTED : cell)));
}
