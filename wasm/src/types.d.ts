/** Jitter of the exponential backoff (Brooker, "Exponential Backoff And Jitter"). */
export type Jitter = "none" | "full" | "equal" | "decorrelated";

/**
 * The client's configuration. Engine fields are resile-core's serde `Config` in camelCase (the
 * core's snake_case spelling is accepted too), every duration in whole milliseconds in a field
 * ending in `Ms`; missing fields take the core's production defaults, unknown fields are an error
 * (`code: "config"`, the message names the field). `baseUrl`, `headers`, `seed`,
 * `tokenProvider`, `maxInFlight` and `maxInFlightPerHost` belong to the client.
 */
export interface ClientConfig {
  /** Relative URLs resolve against it (default: the page's location). */
  baseUrl?: string;
  /** Sent on every request. */
  headers?: Record<string, string>;
  /** The engine's seed (jitter, request ids, idempotency keys); default: crypto.getRandomValues. */
  seed?: number | bigint;
  /**
   * Fetches an access token. Called by the engine, one fetch at a time however many calls wait
   * (single flight), early when the token is within `token.refreshSkewMs` of expiring, and once
   * after a 401. Calls carry `Authorization: Bearer …` when the client has a provider.
   */
  tokenProvider?: () => Promise<TokenGrant> | TokenGrant;
  /** Attempts in flight at once over the client; the engine queues more calls (default 512). */
  maxInFlight?: number;
  /** Attempts in flight at once per host (`scheme://host:port`); default: only `maxInFlight`. */
  maxInFlightPerHost?: number;
  retry?: {
    maxAttempts?: number;
    attemptTimeoutMs?: number | null;
    deadlineMs?: number | null;
    retryStatuses?: number[];
    respectRetryAfter?: boolean;
    maxRetryAfterMs?: number;
    /** Calls waiting out a server hold wake spread over this fraction of their wait after it ends. */
    holdSpread?: number;
  };
  backoff?: { baseMs?: number; factor?: number; capMs?: number; jitter?: Jitter };
  budget?: { enabled?: boolean; ratio?: number; reserve?: number; maxSaved?: number; windowMs?: number };
  breaker?: {
    enabled?: boolean;
    consecutiveFailures?: number;
    failureRate?: number | null;
    windowMs?: number;
    minCalls?: number;
    openMs?: number;
    openGrowth?: number;
    maxOpenMs?: number;
    halfOpenProbes?: number;
  };
  limit?: { perSecond: number; burst?: number } | null;
  /** Learn each host's pace from its RateLimit-Policy / remaining quota (tightens only). */
  learnLimits?: boolean;
  token?: { refreshSkewMs?: number; refreshOn401?: boolean; fetchBackoffMs?: number; maxFetchBackoffMs?: number };
  /** The engine's own concurrency limits (`maxInFlight` above fills them when unset). */
  concurrency?: { maxInFlight?: number | null; maxInFlightPerHost?: number | null; maxQueueMs?: number | null };
  pool?: { recycleAfterFailures?: number };
  /** "generate" (default): every call carries a random `X-Request-ID`, the same on every attempt; "off": none (and `requestId` of a response is empty). */
  requestId?: "generate" | "off";
  maxHosts?: number;
  maxQueuedEvents?: number;
  /** Start from a peer's published policy; the fields written next to it override it. */
  preset?: "aws-standard" | "aws-2.1" | "grpc-a6" | "dotnet-standard";
}

/** What a token provider resolves to. `expiresIn` is in seconds, like OAuth2's `expires_in`. */
export interface TokenGrant {
  accessToken: string;
  expiresIn?: number;
}

/** Options of one call. */
export interface RequestOptions {
  headers?: Record<string, string>;
  /** A body sent as is (kept, so every attempt can send it again). */
  body?: string | Uint8Array | ArrayBuffer;
  /** A value sent as JSON (sets Content-Type: application/json). */
  json?: unknown;
  /**
   * "auto" (default): POST and PATCH get a generated key, the same on every attempt, so they can
   * be retried safely; "off": no key, a write that may have been applied is never repeated; any
   * other string: your own key, sent on every attempt.
   */
  idempotencyKey?: "auto" | "off" | string;
  /** The call's total time, waits included (default `retry.deadlineMs`). */
  deadlineMs?: number;
  /** Attempts for this call (default `retry.maxAttempts`). */
  maxAttempts?: number;
  /** Attach the access token (default: when the client has a tokenProvider). */
  token?: boolean;
  /** Aborting it cancels the call: the attempt in flight is aborted, the promise rejects with `code: "cancelled"`. */
  signal?: AbortSignal;
}

/** How to page through a collection. */
export interface PaginateOptions extends Omit<RequestOptions, "body" | "json" | "idempotencyKey" | "maxAttempts" | "deadlineMs"> {
  /** Retries the whole walk may spend over all its pages; each page that arrives earns one
   * back (default 10). A page takes as many attempts as the walk has left. */
  retries?: number;
  /** The whole walk's deadline; each page gets the time left (default: none, each page keeps
   * the configured per-call deadline). */
  deadlineMs?: number;
  /** "link" (default): RFC 8288 `Link: <…>; rel="next"`; "cursor": a cursor in the body;
   * "offset": offset/limit; "page": page/per_page (stops at X-Total-Count). */
  style?: "link" | "cursor" | "offset" | "page";
  /** Cursor style: JSON pointer to the next cursor in the body (default "/next_cursor"). */
  pointer?: string;
  /** Cursor style: the query parameter that sends it back (default "cursor"). */
  param?: string;
  /** Offset style: items per page (default 100). */
  limit?: number;
  /** Page style: items per page (default 100). */
  perPage?: number;
  /** JSON pointer to the items in a page body (default: the body is the array; "/items" for cursor style). */
  items?: string;
  /** Safety bound on pages (default one million). */
  maxPages?: number;
  /** Start where an earlier walk over the same URL stopped: the `resume` of its error. */
  resume?: string;
}

export type ResileErrorCode =
  | "timeout" | "unavailable" | "rate_limited" | "retries_exhausted" | "not_retried" | "auth"
  | "cancelled" | "overloaded" | "status" | "decode" | "pagination" | "config" | "invalid";

/**
 * Every rejection of this API is a `ResileError`: `e instanceof ResileError`, `e instanceof
 * Error` and `isResileError(e)` all hold.
 */
export interface ResileError extends Error {
  name: "ResileError";
  code: ResileErrorCode;
  /** Whether trying the whole call again later could succeed (the engine's answer). */
  retryable: boolean;
  /** Whether the server may have applied the request (a write may have happened). */
  maybeProcessed: boolean;
  /** The engine's reason and its one-line explanation. */
  why?: Why;
  explain?: string;
  attempts?: number;
  /** The last status, or the last transport failure ("timeout", "reset", "truncated"). */
  status?: number;
  transport?: string;
  /** When the host may be tried again (breaker open), in ms from the failure. */
  retryAfterMs?: number;
  /** A paginated walk that stopped: pass this as `paginate`'s `resume` option to go on. */
  resume?: string;
  /** The same resume point as a whole URL. */
  resumeUrl?: string;
  tokenError?: string;
  /** For `code: "config"`: the field at fault, as a dotted camelCase path (`retry.maxAttempts`). */
  field?: string;
}

/** The engine's reason for a decision (resile-core's `Why`; a test checks this list against it). */
export type Why =
  | "success" | "retryable_status" | "too_many_requests" | "retry_after_header" | "backoff"
  | "never_sent" | "maybe_processed" | "attempt_timeout" | "not_retryable_status"
  | "client_rate_limit" | "server_retry_after_hold" | "server_quota_hold" | "breaker_open"
  | "breaker_probes_busy" | "budget_exhausted" | "max_attempts" | "deadline_exceeded"
  | "deadline_would_pass" | "not_idempotent" | "body_not_replayable" | "retry_after_too_long"
  | "token_missing" | "token_expiring" | "token_expired" | "token_rejected"
  | "token_rejected_again" | "token_fetch_failed" | "hint_unreadable" | "cancelled"
  | "too_many_hosts" | "body_too_large" | "undecodable" | "too_many_redirects"
  | "concurrency_limit" | "connections_failing" | "queue_timeout";

export type AttemptResult = { status: number } | { transport: string };

/** Why a call failed, with its data (resile-core's `Failure`). */
export interface Failure {
  why: Why;
  attempts: number;
  last: AttemptResult | null;
  retryAtMs: number | null;
  processed: "never" | "maybe" | "yes";
  /** What more the failure carries. */
  detail: "none" | "wait_too_long" | "host_held" | "problem";
  /** `wait_too_long`: what the server asked for, and the cap. */
  askedMs?: number;
  capMs?: number;
  /** `wait_too_long`, `host_held`: the header that asked (`Retry-After`, `RateLimit-Reset`, ...). */
  hint?: string;
  /** `problem`: why the answer could not be used, and the limit it broke. */
  problem?: "body_too_large" | "undecodable" | "too_many_redirects";
  limit?: number;
}

interface EventBase { atMs: number; explain?: string }
/**
 * The engine's events, as plain objects (times in ms on the `performance.now()` clock). Keys are
 * camelCase; `event` and `why` values are the core's names. A test checks every variant against
 * the core's serde output.
 */
export type ResileEvent = EventBase & (
  | { event: "call_started"; call: number; host: string; method: string; url?: string }
  | { event: "attempt_started"; call: number; attempt: number; timeoutMs: number | null; probe: boolean }
  | { event: "attempt_finished"; call: number; attempt: number; result: AttemptResult; why: Why }
  | { event: "attempt_aborted"; call: number; attempt: number; why: Why }
  | { event: "connections_recycled"; host: string; failures: number }
  | { event: "queued"; call: number; why: Why }
  | { event: "retry_scheduled"; call: number; attempt: number; delayMs: number; why: Why }
  | { event: "waiting"; call: number; untilMs: number; why: Why }
  | { event: "waiting_for_token"; call: number; why: Why }
  | { event: "host_held"; host: string; untilMs: number; why: Why }
  | { event: "hint_unreadable"; call: number }
  | { event: "breaker_opened"; host: string; untilMs: number; trips: number }
  | { event: "breaker_half_open"; host: string }
  | { event: "breaker_closed"; host: string }
  | { event: "budget_exhausted"; host: string; call: number }
  | { event: "token_fetch_started"; why: Why }
  | { event: "token_refreshed"; generation: number; expiresInMs: number | null }
  | { event: "token_fetch_failed"; callsFailed: number }
  | { event: "call_succeeded"; call: number; status: number; attempts: number; elapsedMs: number }
  | { event: "call_failed"; call: number; elapsedMs: number; failure: Failure }
);

/** One host's state (times in ms on the `performance.now()` clock, like `nowMs`). */
export interface HostState {
  host: string;
  breaker: "closed" | "open" | "half_open";
  openUntilMs: number | null;
  consecutiveFailures: number;
  budgetAvailable: number;
  limiterNextFreeMs: number | null;
  heldUntilMs: number | null;
  activeCalls: number;
  nowMs: number;
}

/** The access token's state. */
export interface TokenState {
  generation: number;
  valid: boolean;
  fetching: boolean;
  expiresAtMs: number | null;
  expiresInMs: number | null;
  nowMs: number;
  lastError: string | null;
}

/** The engine's running totals. */
export type Stats = Record<string, number>;

export interface Paginator {
  [Symbol.asyncIterator](): Paginator;
}
