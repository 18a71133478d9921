import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "roster-signature";
/** A receiver should refuse signatures older than this (replays). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/**
 * A workspace's webhook secret, derived from the deployment's signing key: nothing is stored, every worker can sign,
 * and one workspace's secret tells nothing about another's. Rotating WEBHOOK_SIGNING_KEY rotates every secret.
 */
export function workspaceWebhookSecret(signingKey: string, workspaceId: string): string {
  return `whsec_${createHmac("sha256", signingKey).update(`webhook:${workspaceId}`).digest("hex")}`;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, Stripe-style. */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver does: recompute the HMAC over the raw body, compare in constant time, refuse stale timestamps. */
export function verifySignature(secret: string, header: string, rawBody: string, nowSeconds: number, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): boolean {
  const parts = Object.fromEntries(header.split(",").map((kv) => kv.trim().split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.${rawBody}`).digest("hex"), "utf8");
  const given = Buffer.from(parts.v1, "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface SignedPost {
  url: string;
  /** The `roster-event` header. */
  event: string;
  body: string;
  /** The workspace's secret (workspaceWebhookSecret). */
  secret: string;
  deliveryId: string;
  timeoutMs: number;
  now: Date;
}

/**
 * POSTs one signed webhook body; null when the receiver answered 2xx, else what went wrong in a sentence. Redirects
 * are not followed (a receiver could otherwise bounce the signed body elsewhere); the response body is not read.
 */
export async function postSigned(p: SignedPost): Promise<string | null> {
  try {
    const res = await fetch(p.url, {
      method: "POST",
      body: p.body,
      redirect: "manual",
      signal: AbortSignal.timeout(p.timeoutMs),
      headers: {
        "content-type": "application/json",
        "user-agent": "Roster-Webhooks/1",
        [SIGNATURE_HEADER]: signatureHeader(p.secret, p.body, Math.floor(p.now.getTime() / 1000)),
        "roster-event": p.event,
        "roster-delivery": p.deliveryId,
      },
    });
    await res.body?.cancel().catch(() => {});
    return res.status >= 200 && res.status < 300 ? null : `The receiver answered HTTP ${res.status}.`;
  } catch (err) {
    return `The request failed: ${(err as Error).message}`;
  }
}
