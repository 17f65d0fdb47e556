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
  /**
   * The engine's own concurrency limits (`maxInFlight` above fills them when unset). `adaptive`
   * replaces the fixed per-host bound with Netflix's AIMD or Gradient2 limit.
   */
  concurrency?: {
    maxInFlight?: number | null;
    maxInFlightPerHost?: number | null;
    maxQueueMs?: number | null;
    adaptive?: AdaptiveConcurrency | null;
  };
  /** AWS's adaptive client rate per host: off until the host throttles, then CUBIC (default off). */
  adaptiveRate?: { enabled?: boolean };
  pool?: { recycleAfterFailures?: number };
  /**
   * Hedged requests for GET, HEAD and OPTIONS (off by default): when an attempt has not answered
   * after `delayMs` (or, with `percentile`, the host's recent latency at that quantile, once it
   * has `minSamples`, within `minDelayMs`..`maxDelayMs`), another goes beside it; the first good
   * answer wins and the others are aborted. A hedge is an attempt: it counts against
   * `retry.maxAttempts`, the budget, the concurrency and rate limits, and is never sent to a
   * breaker that is not closed. At most `maxHedges` (1..3) per call.
   */
  hedge?: {
    enabled?: boolean;
    delayMs?: number;
    percentile?: number | null;
    minSamples?: number;
    minDelayMs?: number;
    maxDelayMs?: number;
    maxHedges?: number;
  };
  /** "generate" (default): every call carries a random `X-Request-ID`, the same on every attempt; "off": none (and `requestId` of a response is empty). */
  requestId?: "generate" | "off";
  maxHosts?: number;
  maxQueuedEvents?: number;
  /**
   * AWS's retry rules, set by the AWS presets (override field by field next to `preset`): the
   * per-host retry quota (`capacity`, the cost of a retry after an error, a timeout and a 429,
   * and what a first-try success adds), the base delay after a 429 (null: `backoff.baseMs`),
   * where `backoff.capMs` applies, how far `x-amz-retry-after` may push a wait past the computed
   * one (null: the header is ignored), and long polling (a call the quota refused still waits
   * out its backoff before it fails). Only `backoff.jitter` "full" or "none" and factor 2 fit it.
   */
  aws?: {
    quota?: { capacity?: number; retryCost?: number; timeoutCost?: number; throttlingCost?: number; successIncrement?: number };
    throttlingBaseMs?: number | null;
    cap?: "after_jitter" | "before_jitter";
    retryAfterSlackMs?: number | null;
    longPolling?: boolean;
  } | null;
  /** gRPC A6 retry throttling per host, set by `grpc-a6`: starts at `maxTokens` (1..1000), −1 per failed attempt, +`tokenRatio` per success, retries only above half. */
  retryThrottling?: { maxTokens?: number; tokenRatio?: number } | null;
  /** Start from a peer's published policy; the fields written next to it override it. */
  preset?: "aws-standard" | "aws-adaptive" | "aws-2.1" | "grpc-a6" | "dotnet-standard";
  /**
   * Fleet mode (instances sharing one quota through a store). The browser client has no store:
   * with this set it runs on its local share (`limit / size`), announced by `fleet_fallback`.
   */
  fleet?: { name?: string; size?: number; answerWithinMs?: number; recheckMs?: number; shareBreaker?: boolean } | null;
}

/** An adaptive per-host concurrency limit (Netflix concurrency-limits); defaults are Netflix's. */
export type AdaptiveConcurrency =
  | {
      algorithm: "aimd";
      initialLimit?: number; minLimit?: number; maxLimit?: number;
      /** A drop multiplies the limit by this, in [0.5, 1) (default 0.9). */
      backoffRatio?: number;
      /** An attempt slower than this counts as a drop (default 5000). */
      timeoutMs?: number;
    }
  | {
      algorithm: "gradient2";
      initialLimit?: number; minLimit?: number; maxLimit?: number;
      smoothing?: number; queueSize?: number; longWindow?: number; rttTolerance?: number;
      /** Sampling windows (Netflix's WindowedLimit): each lasts twice its fastest attempt, within these bounds (≥ 100, default 1000 each); one that held at least `windowSize` (≥ 10, default 10) attempts is one sample. */
      minWindowMs?: number; maxWindowMs?: number; windowSize?: number;
    };

/** What a token provider resolves to. `expiresIn` is in seconds, like OAuth2's `expires_in`. */
export interface TokenGrant {
  accessToken: string;
  expiresIn?: number;
}

/** What a body factory returns for one attempt. */
export type BodySource = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

/** Makes the body of one attempt (called again for every attempt). */
export type BodyFactory = () => BodySource | Promise<BodySource>;

/** Options of one call. */
export interface RequestOptions {
  headers?: Record<string, string>;
  /**
   * The body. Text and bytes are kept, so every attempt can send them again. A function is
   * called once per attempt for that attempt's body (a body factory: the call can be retried as
   * with a body in memory). A `ReadableStream` is sent once: the call is never retried after
   * the attempt that took it (`body_not_replayable`). A stream, given or made, is read into a
   * Blob before it is sent: Chromium streams a request body only with `duplex: "half"` and only
   * over HTTP/2, never over HTTP/1.1.
   */
  body?: string | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | BodyFactory;
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
  /**
   * Answer with this instead of failing when the host is refused (breaker open or isolated, a
   * server hold past the deadline) or the retries ran out (attempts, budget, deadline, a
   * Retry-After over the cap). A write whose last attempt may have been applied still fails
   * unless `allowWrites`. The response's `fallback` says it is one, and why.
   */
  fallback?: FallbackOption;
  /**
   * A retry predicate. It can only narrow what is safe: a write that may have been applied
   * without an Idempotency-Key is not repeated whatever it says, and the attempts, deadline,
   * budget, breaker and `retry.maxRetryAfterMs` cap still refuse. It must not call the client.
   */
  retryIf?: (check: RetryCheck) => RetryVerdict | undefined | void;
}

/** A value (status default 200; `json` sets Content-Type), or the last 2xx reply to the same method and URL if at most `lastGoodMs` old. */
export type FallbackOption =
  | { value: { status?: number; headers?: Record<string, string>; body?: string; json?: unknown }; allowWrites?: boolean }
  | { lastGoodMs: number; allowWrites?: boolean };

/** `ResileResponse.fallback`: the call answered with its fallback because of `why`. */
export interface FallbackInfo {
  why: Why;
  explain: string;
  attempts: number;
  source: "value" | "last_good";
  /** For `last_good`: the stored reply's age. */
  ageMs?: number;
}

/** What a retry predicate sees: the request, and the attempt's response head or transport failure. */
export interface RetryCheck {
  method: string;
  url: string;
  attempt: number;
  status?: number;
  headers?: Headers;
  /** The transport failure: "reset", "timeout", "truncated", ... */
  error?: string;
}

/** `"retry"`, `"dontRetry"` (a response is the answer, a failure fails), a wait, or `"decide"` / `undefined`: the engine's rules. */
export type RetryVerdict = "retry" | "dontRetry" | "decide" | { retryAfterMs: number };

/**
 * Every breaker's state (`client.exportBreakers()`), versioned, with times relative to the export
 * and the exporter's wall clock: the same JSON the native client writes.
 */
export interface BreakerSnapshot {
  version: 1;
  exported_at_unix_ms?: number;
  hosts: { host: string; state: "closed" | "open" | "half_open"; open_remaining_ms?: number; trips?: number; consecutive_failures?: number }[];
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
  | "cancelled" | "overloaded" | "status" | "decode" | "pagination" | "config" | "invalid"
  | "resume";

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
  | "concurrency_limit" | "connections_failing" | "queue_timeout"
  | "adaptive_rate" | "throttled" | "rate_recovering" | "adaptive_concurrency" | "attempt_dropped"
  | "breaker_isolated" | "retry_predicate" | "predicate_declined"
  | "hedge_delay" | "hedge_percentile" | "hedge_lost"
  | "fleet_rate_limit" | "fleet_breaker_open" | "fleet_store_down"
  | "tls_failed" | "unreadable" | "refused_unprocessed";

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
  | { event: "hedge_sent"; call: number; attempt: number; delayMs: number; why: Why }
  | { event: "hedge_refused"; call: number; why: Why }
  | { event: "token_fetch_started"; why: Why }
  | { event: "token_refreshed"; generation: number; expiresInMs: number | null }
  | { event: "token_fetch_failed"; callsFailed: number }
  | { event: "call_succeeded"; call: number; status: number; attempts: number; elapsedMs: number }
  | { event: "call_failed"; call: number; elapsedMs: number; failure: Failure }
  /** The host's adaptive client rate changed (`why`: "throttled" or "rate_recovering"). */
  | { event: "adaptive_rate_changed"; host: string; perSecond: number; measured: number; why: Why }
  /** The host's adaptive concurrency limit changed (`why`: "success" or "attempt_dropped"). */
  | { event: "concurrency_limit_changed"; host: string; limit: number; previous: number; why: Why }
  | { event: "call_fell_back"; call: number; elapsedMs: number; failure: Failure; fallback: { source: "value" | "last_good"; ageMs?: number } }
  | { event: "breaker_controlled"; host: string; control: "isolated" | "isolation_released" | "forced_closed" | "force_released" | "reset" | "imported" }
  | { event: "fleet_fallback"; problem: "timeout" | "unreachable" | "rejected"; shareOf: number; untilMs: number }
  | { event: "fleet_resumed"; downMs: number }
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
  /** Attempts in flight to the host now. */
  inFlight: number;
  /** A hold by hand on the breaker (`isolate` outranks `force_closed`), or null. */
  breakerHold: "isolate" | "force_closed" | null;
  /** The adaptive client rate (with `adaptiveRate.enabled`): paced once the host throttled. */
  adaptiveRate: { throttled: boolean; fillRate: number; measuredRate: number } | null;
  /** The adaptive concurrency limit in force (with `concurrency.adaptive`). */
  concurrencyLimit: number | null;
  /** Tokens left in the AWS retry quota (with the `aws` section, the AWS presets). */
  retryQuota: number | null;
  /** gRPC A6 retry-throttling tokens (under `grpc-a6`). */
  retryThrottleTokens: number | null;
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
