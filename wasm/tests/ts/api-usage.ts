// Type-checked (never run) against the generated www/pkg/resile_wasm.d.ts by scripts/test-wasm.sh:
// the declarations cover every part of the JS API a caller touches.
import init, { Client, ResileResponse, ResileError, isResileError, BreakerOverride, type ClientConfig, type ResileEvent, type HostState, type TokenState, type Why, type RetryCheck, type RetryVerdict, type FallbackInfo, type BreakerSnapshot } from "../../../www/pkg/resile_wasm.js";

export async function usage(): Promise<number> {
  await init();
  const config: ClientConfig = {
    baseUrl: "http://127.0.0.1:8080",
    headers: { "x-app": "demo" },
    seed: 42,
    maxInFlight: 16,
    maxInFlightPerHost: 4,
    retry: { maxAttempts: 5, attemptTimeoutMs: 2000, deadlineMs: null },
    backoff: { baseMs: 100, jitter: "decorrelated" },
    breaker: { consecutiveFailures: 5, failureRate: null },
    limit: { perSecond: 10 },
    token: { refreshSkewMs: 30000, refreshOn401: true },
    tokenProvider: async () => ({ accessToken: "t", expiresIn: 3600 }),
  };
  const client = new Client(config);
  const dispose: () => void = client.onEvent((e: ResileEvent) => {
    if (e.event === "retry_scheduled") console.log(e.atMs, e.delayMs, e.why, e.explain);
    if (e.event === "call_failed") console.log(e.failure.why, e.failure.retryAtMs);
  });
  const controller = new AbortController();
  const r: ResileResponse = await client.post("/orders", { json: { sku: 1 }, idempotencyKey: "auto", deadlineMs: 5000, signal: controller.signal });
  const body: unknown = await r.json();
  const text: string = await r.text();
  const buffer: ArrayBuffer = await r.arrayBuffer();
  const headers: Headers = r.headers;
  console.log(r.status, r.ok, r.attempts, r.requestId, headers.get("retry-after"), body, text, buffer.byteLength);
  await client.put("/x", { body: new Uint8Array([1, 2]), idempotencyKey: "my-key" });
  await client.patch("/x", { body: "text", maxAttempts: 2, token: false });
  await client.delete("/x");
  await client.head("/x");
  await client.request("OPTIONS", "/x");
  const value: unknown = await client.getJson("/x", { headers: { accept: "application/json" } });
  console.log(value);
  let n = 0;
  const walk = new AbortController();
  for await (const item of client.paginate("/items/cursor", { style: "cursor", pointer: "/next_cursor", param: "cursor", items: "/items", signal: walk.signal })) {
    n += (item as { id: number }).id;
    if (n > 100) walk.abort();
  }
  const pages = client.paginate("/items/offset", { style: "offset", limit: 50, maxPages: 10 });
  const step: IteratorResult<unknown> = await pages.next();
  console.log(step.done, pages.pages, pages.items);
  const resumed = client.paginate("/items/offset", { style: "offset", limit: 50, resume: pages.resume ?? "?" });
  console.log(resumed.pages);
  try {
    await client.get("/status/503");
  } catch (e) {
    if (isResileError(e) && e instanceof ResileError && e.code === "retries_exhausted") {
      const why: Why | undefined = e.why;
      console.log(e.retryable, e.maybeProcessed, e.status, e.retryAfterMs, why, e.message);
    }
  }
  const hosts: HostState[] = client.hosts();
  const token: TokenState = client.token();
  console.log(hosts[0]?.breaker, hosts[0]?.heldUntilMs, token.generation, token.lastError, client.stats().attempts, client.config().retry?.maxAttempts);
  const stale = await client.get("/prices", {
    fallback: { lastGoodMs: 60_000 },
    retryIf: (check: RetryCheck): RetryVerdict | undefined =>
      check.status === 409 ? { retryAfterMs: 500 } : check.error === "reset" ? "dontRetry" : undefined,
  });
  const info: FallbackInfo | undefined = stale.fallback;
  console.log(info?.why, info?.source, info?.ageMs);
  await client.post("/orders", { json: {}, fallback: { value: { status: 202, json: { queued: true } }, allowWrites: true } });
  const hold: BreakerOverride = client.isolate("/prices");
  console.log(hold.host);
  hold.release();
  client.forceClosed("/prices").release();
  client.resetBreaker("/prices");
  const snapshot: BreakerSnapshot = client.exportBreakers();
  const imported: number = client.importBreakers(JSON.stringify(snapshot)) + client.importBreakers(snapshot);
  console.log(snapshot.version, snapshot.hosts[0]?.open_remaining_ms, imported);
  dispose();
  return n;
}
