import { parseEventStream } from "../lib/event-stream.js";
import { createReadStream, createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

/** An error answer of the API, kept whole so the CLI can print its code and per-field problems. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface ApiClient {
  baseUrl: string;
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Streams a GET response body into a file; resolves with the bytes written. */
  download(path: string, file: string): Promise<number>;
  /** Reads a `text/event-stream` GET response as {event, data} messages (data parsed as JSON) until the server closes it. */
  events(path: string): AsyncGenerator<{ event: string; data: unknown }>;
  /** Streams a file as a raw text/csv body, reporting bytes sent and newlines seen (a row estimate) as it goes. */
  uploadCsv<T>(path: string, file: string, onProgress: (sent: number, total: number, newlines: number) => void): Promise<T>;
}

/** Reads ROSTER_URL and ROSTER_API_KEY; the key never appears in output. */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const key = env.ROSTER_API_KEY;
  if (!key) throw new Error("Set ROSTER_API_KEY to a workspace API key (roster workspace create prints one).");
  const baseUrl = (env.ROSTER_URL ?? "http://127.0.0.1:3000").replace(/\/+$/, "");
  try {
    new URL(baseUrl);
  } catch {
    throw new Error(`ROSTER_URL is not a URL: ${baseUrl}`);
  }
  return createClient(baseUrl, key);
}

function toApiError(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
    if (body.error?.message) return new ApiError(status, body.error.code ?? "error", body.error.message, body.error.details);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(status, "http_error", `The server answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}.`);
}

export function createClient(baseUrl: string, key: string): ApiClient {
  const auth = { authorization: `Bearer ${key}` };
  return {
    baseUrl,
    async json<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw toApiError(res.status, text);
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async download(path: string, file: string): Promise<number> {
      const res = await fetch(`${baseUrl}${path}`, { headers: auth });
      if (!res.ok || !res.body) throw toApiError(res.status, await res.text());
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), counter, createWriteStream(file));
      return bytes;
    },
    async *events(path: string) {
      const res = await fetch(`${baseUrl}${path}`, { headers: { ...auth, accept: "text/event-stream" } });
      if (!res.ok || !res.body) throw toApiError(res.status, await res.text());
      yield* parseEventStream(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream));
    },
    async uploadCsv<T>(path: string, file: string, onProgress: (sent: number, total: number, newlines: number) => void): Promise<T> {
      const total = (await stat(file)).size;
      const url = new URL(`${baseUrl}${path}`);
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      let sent = 0;
      let newlines = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
          onProgress(sent, total, newlines);
          cb(null, chunk);
        },
      });
      return new Promise<T>((resolve, reject) => {
        const req = send(url, { method: "POST", headers: { ...auth, "content-type": "text/csv", "content-length": String(total) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) return reject(toApiError(status, text));
            try {
              resolve(JSON.parse(text) as T);
            } catch (err) {
              reject(err as Error);
            }
          });
        });
        req.on("error", reject);
        pipeline(createReadStream(file), counter, req).catch(reject);
      });
    },
  };
}
