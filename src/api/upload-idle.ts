import type { IncomingMessage } from "node:http";
import { PassThrough, finished, type Readable } from "node:stream";
import { RequestTimeoutError } from "../domain/errors.js";

export interface IdleGuard {
  /** A raw (non-multipart) body to read instead of `body` itself: it fails with RequestTimeoutError when the body stalls. */
  watch(body: Readable): Readable;
  /** Stops watching (the body arrived, or the request failed otherwise); restores the socket's timeout. */
  stop(): void;
}

/**
 * Aborts an upload whose body stops arriving for `ms` (socket inactivity, so a slow but steady client is fine). The
 * stream being read fails with RequestTimeoutError, so storage deletes the partial file and the client gets 408 while
 * its socket still takes an answer. The request itself is not destroyed (that would close the socket first):
 * - a raw body is read through a PassThrough that is unpiped and failed;
 * - a multipart body: @fastify/multipart ends the parts iteration, and fails the file part, on the request's 'error'.
 */
export function guardUploadIdle(raw: IncomingMessage, ms: number): IdleGuard {
  const socket = raw.socket as IncomingMessage["socket"] | null;
  let watched: { body: Readable; through: PassThrough } | null = null;
  const onIdle = () => {
    if (raw.complete) return;
    const err = new RequestTimeoutError("request_timeout", `The upload stalled: no data arrived for ${ms} ms, so it was stopped and nothing was kept. Send it again.`, { idleTimeoutMs: ms });
    if (watched) {
      watched.body.unpipe(watched.through);
      watched.through.destroy(err);
    } else {
      raw.emit("error", err);
    }
  };
  // app.inject's fake socket has no timers: there is no network to stall on. The listener sits on the request, not the
  // socket: node's server destroys a timed-out socket unless the request (or response, or server) handles 'timeout'.
  // A body already received whole (a JSON paste, parsed before the route ran) cannot stall: no timer for it.
  const armed = ms > 0 && !raw.complete && typeof socket?.setTimeout === "function";
  if (armed) raw.setTimeout(ms, onIdle);
  return {
    watch(body) {
      const through = new PassThrough();
      watched = { body, through };
      // pipe() forwards neither errors nor a premature close (a client gone mid-upload): finished() reports both.
      finished(body, (err) => {
        if (err) through.destroy(err);
      });
      return body.pipe(through);
    },
    stop() {
      if (!armed) return;
      raw.off("timeout", onIdle);
      socket.setTimeout(0);
    },
  };
}
