// A closed set of API error kinds, classified from the Status object the API server returns.
export type ApiErrorKind =
  | "BadRequest"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "Forbidden"
  | "Unauthorized"
  | "Gone"
  | "TooManyRequests"
  | "ServerError"
  | "Unavailable"
  | "Other";

export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly kind: ApiErrorKind;
  readonly status: number;
  /** Seconds the server asked us to wait (Retry-After), when it did. */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: ApiErrorKind, status: number, message: string, retryAfterSeconds?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function classifyStatus(status: number, reason: string | undefined): ApiErrorKind {
  if (status === 0) return "Unavailable";
  if (status === 400) return "BadRequest";
  if (status === 404) return "NotFound";
  if (status === 409) return reason === "AlreadyExists" ? "AlreadyExists" : "Conflict";
  if (status === 422) return "Invalid";
  if (status === 403) return "Forbidden";
  if (status === 401) return "Unauthorized";
  if (status === 410) return "Gone";
  if (status === 429) return "TooManyRequests";
  if (status >= 500) return "ServerError";
  return "Other";
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.kind === "NotFound";
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.kind === "Conflict";
export const isAlreadyExists = (e: unknown): boolean => e instanceof ApiError && e.kind === "AlreadyExists";
