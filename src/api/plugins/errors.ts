import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import fp from "fastify-plugin";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isDatabaseUnavailableCode } from "../../db/connection-errors.js";
import { DomainError } from "../../domain/errors.js";

const STATUS_BY_KIND: Record<DomainError["kind"], number> = {
  validation: 422,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  unsupported_media: 415,
  bad_request: 400,
  timeout: 408,
  insufficient_storage: 507,
};

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown) {
  return reply.status(status).send({
    error: { code, message, ...(details === undefined ? {} : { details }) },
    requestId: reply.request.id,
  });
}

/**
 * Node's HTTP parser refused the request before Fastify saw it (a body cut short by a half-closed socket, a malformed
 * request line): answered in the API's error shape, as every other error is, then the connection closes.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) return;
  const timeout = err.code === "ERR_HTTP_REQUEST_TIMEOUT";
  const [status, text] = timeout ? [408, "Request Timeout"] : [400, "Bad Request"];
  const body = JSON.stringify({
    error: timeout
      ? { code: "request_timeout", message: "The request did not arrive in time." }
      : { code: "bad_request", message: "The request is malformed or was cut short before its end." },
    requestId: randomUUID(),
  });
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Maps every error to the API's error shape; messages of unexpected (5xx) errors never leave the process. */
export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, "not_found", `No route for ${req.method} ${req.url.split("?")[0]}.`));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof DomainError) {
      const status = STATUS_BY_KIND[err.kind];
      if (status >= 500) req.log.warn({ err: { code: err.code, message: err.message } }, "request failed");
      return sendError(reply, status, err.code, err.message, err.details);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const problems = err.validation.map((v) => ({
        field: [err.validationContext, ...String(v.instancePath).split("/").filter(Boolean)].join("."),
        reason: v.message ?? "is invalid",
      }));
      return sendError(reply, 422, "invalid_request", "The request is invalid.", { problems });
    }
    const status = err.statusCode ?? 500;
    if (status === 413 || err.code === "FST_REQ_FILE_TOO_LARGE" || err.code === "FST_PARTS_LIMIT" || err.code === "FST_FILES_LIMIT") {
      return sendError(reply, 413, "payload_too_large", err.message);
    }
    if (status === 415) return sendError(reply, 415, "unsupported_media_type", err.message);
    if (err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || err instanceof SyntaxError) {
      return sendError(reply, 400, "invalid_json", "The request body is not valid JSON.");
    }
    if (status >= 400 && status < 500) {
      return sendError(reply, status, String(err.code ?? "bad_request").toLowerCase(), err.message);
    }
    // drizzle wraps driver errors (DrizzleQueryError) with the original as `cause`.
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (isDatabaseUnavailableCode(err.code) || isDatabaseUnavailableCode(cause?.code)) {
      // The logger shows a query error as the driver's (code, message): drizzle's message repeats the parameters.
      req.log.warn({ err }, "database unavailable");
      return sendError(reply, 503, "database_unavailable", "The database is unavailable; try again shortly.");
    }
    req.log.error({ err }, "unhandled error");
    return sendError(reply, 500, "internal_error", "Something went wrong on our side; the request id helps us find it.");
  });
});
