import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const API_KEY_PREFIX = "rst_";
/** 32 random bytes: 256 bits, far beyond guessing. base64url keeps keys URL- and header-safe. */
const SECRET_BYTES = 32;
const KEY_PATTERN = /^rst_[A-Za-z0-9_-]{43}$/;
const DISPLAY_CHARS = 12;

export interface NewApiKey {
  key: string;
  hash: Buffer;
  displayPrefix: string;
}

export function generateApiKey(): NewApiKey {
  const key = API_KEY_PREFIX + randomBytes(SECRET_BYTES).toString("base64url");
  return { key, hash: hashApiKey(key), displayPrefix: key.slice(0, DISPLAY_CHARS) };
}

export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** True when the string has the shape of a Roster key; anything else is refused before touching the database. */
export function isWellFormedApiKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** Constant-time comparison of two secrets of any length (hashing first makes the lengths equal). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
