/** Keyset cursors for lists ordered by a numeric id ascending: opaque to clients, the last id inside. */
export function encodeIdCursor(id: number): string {
  return Buffer.from(JSON.stringify({ after: id })).toString("base64url");
}

export function decodeIdCursor(cursor: string): number | null {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { after?: unknown };
    return typeof v.after === "number" && Number.isSafeInteger(v.after) && v.after >= 0 ? v.after : null;
  } catch {
    return null;
  }
}
