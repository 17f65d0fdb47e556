// Type-checked (never run) against the generated www/pkg/resile_wasm.d.ts by scripts/test-wasm.sh:
// the declarations cover every part of the JS API a caller touches.
import init, { Client, ResileResponse, type ClientConfig, type ResileError, type ResileEvent, type HostState, type TokenState } from "../../../www/pkg/resile_wasm.js";

export async function usage(): Promise<number> {
  await init();
  const config: ClientConfig = {
    baseUrl: "http://127.0.0.1:8080",
    headers: { "x-app": "demo" },
    seed: 42,
    retry: { max_attempts: 5, attempt_timeout_ms: 2000, deadline_ms: null },
    backoff: { base_ms: 100, jitter: "decorrelated" },
    breaker: { consecutive_failures: 5, failure_rate: null },
    limit: { per_second: 10 },
    tokenProvider: async () => ({ accessToken: "t", expiresIn: 3600 }),
  };
  const client = new Client(config);
  const id: number = client.onEvent((e: ResileEvent) => {
    if (e.event === "retry_scheduled") console.log(e.delay_ms, e.why, e.explain);
    if (e.event === "call_failed") console.log(e.failure.why, e.failure.retry_at_ms);
  });
  const controller = new AbortController();
  const r: ResileResponse = await client.post("/orders", { json: { sku: 1 }, idempotencyKey: "auto", deadlineMs: 5000, signal: controller.signal });
  const body: unknown = r.json();
  const text: string = r.text();
  console.log(r.status, r.ok, r.attempts, r.requestId, r.headers["retry-after"], r.header("link"), body, text);
  await client.put("/x", { body: new Uint8Array([1, 2]), idempotencyKey: "my-key" });
  await client.patch("/x", { body: "text", maxAttempts: 2, token: false });
  await client.delete("/x");
  await client.request("HEAD", "/x");
  const value: unknown = await client.getJson("/x", { headers: { accept: "application/json" } });
  console.log(value);
  let n = 0;
  for await (const item of client.paginate("/items/cursor", { style: "cursor", pointer: "/next_cursor", param: "cursor", items: "/items" })) {
    n += (item as { id: number }).id;
  }
  const pages = client.paginate("/items/offset", { style: "offset", limit: 50, maxPages: 10 });
  const step: IteratorResult<unknown> = await pages.next();
  console.log(step.done, pages.pages, pages.items);
  const resumed = client.paginate("/items/offset", { style: "offset", limit: 50, resume: pages.resume ?? "?" });
  console.log(resumed.pages);
  try {
    await client.get("/status/503");
  } catch (e) {
    const err = e as ResileError;
    if (err.name === "ResileError" && err.code === "retries_exhausted") console.log(err.retryable, err.maybeProcessed, err.status, err.retryAfterMs);
  }
  const hosts: HostState[] = client.hosts();
  const token: TokenState = client.token();
  console.log(hosts[0]?.breaker, token.generation, client.stats().attempts, client.config().retry?.max_attempts);
  client.offEvent(id);
  return n;
}
