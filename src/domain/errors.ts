/**
 * Domain errors: a code a client can branch on and a sentence a person can act on.
 * They know nothing of HTTP; the API's errors plugin maps each class to a status.
 */
export abstract class DomainError extends Error {
  abstract readonly kind:
    | "validation"
    | "not_found"
    | "conflict"
    | "too_large"
    | "unavailable"
    | "unsupported_media"
    | "bad_request"
    | "timeout"
    | "insufficient_storage";
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends DomainError {
  readonly kind = "validation";
}
export class NotFoundError extends DomainError {
  readonly kind = "not_found";
  constructor(what: string, details?: unknown) {
    super("not_found", `${what} was not found.`, details);
  }
}
export class ConflictError extends DomainError {
  readonly kind = "conflict";
}
export class PayloadTooLargeError extends DomainError {
  readonly kind = "too_large";
  constructor(limitBytes: number) {
    super("payload_too_large", `The upload is larger than the limit of ${limitBytes} bytes.`, { limitBytes });
  }
}
export class UnavailableError extends DomainError {
  readonly kind = "unavailable";
}
export class UnsupportedMediaError extends DomainError {
  readonly kind = "unsupported_media";
}
/** The request itself is malformed (a multipart body without a boundary, cut short): nothing in it can be read. */
export class BadRequestError extends DomainError {
  readonly kind = "bad_request";
}
/** The client stopped sending the body it announced. */
export class RequestTimeoutError extends DomainError {
  readonly kind = "timeout";
}
/** The storage has no room (ENOSPC, EDQUOT): nothing was kept; retrying later, or a smaller file, may work. */
export class InsufficientStorageError extends DomainError {
  readonly kind = "insufficient_storage";
  constructor() {
    super("insufficient_storage", "The server has no room to store this upload; nothing was kept. Try again later.");
  }
}
