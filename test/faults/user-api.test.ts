// Fault: the user API behind `passport.userApi` stalls, errors and goes down while requests of many
// users keep coming, then comes back. Promises (docs/resilience.md): the calls open at once never
// exceed `maxPendingCalls`; concurrent lookups of one user share one call and a cached answer costs
// none, also while the API is failing; a user API that cannot answer costs 503
// dependency_unavailable on a fail-closed route (a passport without user facts on a fail-open one),
// never a hang; the breaker stops the calls while it is open; recovery once the API is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from '../harness/helpers.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { TEST_SUBJECT_HEADER } from '../support/test-filters.js';

const AUTHORITY = 'api.example.com';
/** calls to the API open at once, per route */
const MAX_PENDING = 8;
const SUBJECTS = 40;
/** requests per subject sent at once: they share one call */
const PER_SUBJECT = 3;
/** the breaker of the /facts/ route's API: opens at 50 % failures once 10 calls are in its window */
const VOLUME_THRESHOLD = 10;
const RESET_TIMEOUT_MS = 1000;
const WAIT_MS = 60_000;

type Mode = 'answer' | 'hold' | 'error';

/** A user API on 127.0.0.1: /facts/<subject> answers per `mode`; /stall/<subject> never answers. Counts calls and the most open at once. */
class FakeUserApi {
  mode: Mode = 'answer';
  readonly calls: string[] = [];
  open = 0;
  mostOpen = 0;
  private held: (() => void)[] = [];
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => { this.handle(req, res); });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  baseUrl(prefix: string): string {
    return `http://127.0.0.1:${this.port}/${prefix}/`;
  }

  callsTo(prefix: string): number {
    return this.calls.filter((url) => url.startsWith(`/${prefix}/`)).length;
  }

  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  /** down: the port refuses connections (open calls are cut) */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    this.release();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    this.calls.push(url);
    this.open++;
    this.mostOpen = Math.max(this.mostOpen, this.open);
    res.on('close', () => { this.open--; });
    if (url.startsWith('/stall/')) return; // answered never: gatehouse's call timeout ends it
    const answer = (): void => {
      if (this.mode === 'error') res.writeHead(500).end('{"error":"internal"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ amr: ['pwd', 'otp'], aal: 2 }));
    };
    if (this.mode === 'hold') this.held.push(answer);
    else answer();
  }
}

function passportKeys(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-userapi-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  writeFileSync(join(dir, 'k.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const manifest = join(dir, 'keys.json');
  writeFileSync(manifest, JSON.stringify({ keys: [{ kid: 'k', status: 'active', file: 'k.pem' }] }));
  return manifest;
}

interface Answer {
  readonly status: number;
  readonly reason: string | undefined;
  /** the passport's user facts, when the upstream got one */
  readonly facts: { amr: string[]; aal: number } | undefined;
}

async function ask(e2e: EndToEnd, route: string, subject: string): Promise<Answer> {
  const result = await e2e.envoy.request({ method: 'GET', path: `/${route}/accounts`, authority: AUTHORITY, headers: [[TEST_SUBJECT_HEADER, subject]] });
  const passport = result.upstreamRequest?.headers.find(([name]) => name === 'x-passport')?.[1];
  const claims = passport === undefined ? undefined : JSON.parse(Buffer.from(passport.split('.')[1] ?? '', 'base64url').toString()) as { amr: string[]; aal: number };
  return { status: result.status, reason: get(result.headers, 'x-gatehouse-reason'), facts: claims === undefined ? undefined : { amr: claims.amr, aal: claims.aal } };
}

const tally = (answers: readonly Answer[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status === 200 ? `200 aal ${a.facts?.aal ?? '-'}` : `${a.status} ${a.reason ?? ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('user API held, stalled, erroring and down under load: pending calls bounded, coalescing and cache hold, 503 dependency_unavailable, breaker, recovery', async (t) => {
  const api = new FakeUserApi();
  await api.start();
  t.after(() => api.stop());
  const keys = passportKeys(t);
  // the call timeout is generous where the test holds answers (a busy machine) and short where the
  // API never answers at all (the timeout is then the only way a call ends, whatever the machine)
  const userApi = (prefix: string, extra: string): string => `{ baseUrl: "${api.baseUrl(prefix)}", maxPendingCalls: ${MAX_PENDING}, cacheTtlMs: 600000, ${extra} }`;
  const route = (id: string, userApiEntry: string): string => `
  - id: ${id}
    match: { path: { prefix: /${id}/ } }
    filters:
      - test-identity: {}
      - passport: { audience: payments, issuer: "https://gatehouse.test.invalid", keysFile: ${JSON.stringify(keys)}, userApi: ${userApiEntry} }`;
  const e2e = await endToEnd(t, `
routes:${route('facts', userApi('facts', `timeoutMs: 10000, failureMode: closed, breaker: { volumeThreshold: ${VOLUME_THRESHOLD}, errorThresholdPercentage: 50, rollingWindowMs: 60000, rollingBuckets: 10, resetTimeoutMs: ${RESET_TIMEOUT_MS} }`))}
${route('stall', userApi('stall', 'timeoutMs: 300, failureMode: closed, breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeoutMs: 600000 }'))}
${route('open', userApi('open', 'timeoutMs: 10000, failureMode: open'))}
`);
  const figures: string[] = [];

  // 1. the API holds its answers: 40 users × 3 requests at once
  api.mode = 'hold';
  const answers: Answer[] = [];
  const firstRound = Array.from({ length: SUBJECTS * PER_SUBJECT }, (_, i) => ask(e2e, 'facts', `user-${i % SUBJECTS}`).then((a) => { answers.push(a); return a; }));
  // the bound's refusals come at once; the rest wait on the held calls (one per user, shared by its 3 requests)
  await until(`${MAX_PENDING} calls held and the other users refused`, () => api.open === MAX_PENDING && answers.length === SUBJECTS * PER_SUBJECT - MAX_PENDING * PER_SUBJECT);
  api.release();
  api.mode = 'answer';
  await Promise.all(firstRound);
  assert.deepEqual(tally(answers), { '200 aal 2': MAX_PENDING * PER_SUBJECT, '503 dependency_unavailable': (SUBJECTS - MAX_PENDING) * PER_SUBJECT });
  assert.equal(api.callsTo('facts'), MAX_PENDING, 'one call per user, however many of its requests came at once');
  assert.equal(api.mostOpen, MAX_PENDING, 'never more calls open than maxPendingCalls');
  const called = new Set(api.calls.map((url) => decodeURIComponent(url.slice('/facts/'.length))));
  figures.push(`held: ${answers.length} requests of ${SUBJECTS} users → ${JSON.stringify(tally(answers))}, ${api.callsTo('facts')} calls, at most ${api.mostOpen} open`);

  // 2. a cached user costs no call
  for (const subject of called) assert.equal((await ask(e2e, 'facts', subject)).status, 200, subject);
  assert.equal(api.callsTo('facts'), MAX_PENDING, 'cached answers make no call');

  // 3. stalled: an API that never answers; each call ends at its 300 ms timeout, the bound still holds, the breaker opens
  const stalled = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(e2e, 'stall', `stalled-${i}`)));
  assert.deepEqual(tally(stalled), { '503 dependency_unavailable': 30 });
  assert.equal(api.callsTo('stall'), MAX_PENDING, 'the bound held: the other 22 users were refused without a call');
  assert.equal(api.mostOpen, MAX_PENDING);
  const afterStall = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(e2e, 'stall', `stalled-again-${i}`)));
  assert.deepEqual(tally(afterStall), { '503 dependency_unavailable': 20 });
  assert.equal(api.callsTo('stall'), MAX_PENDING, 'the breaker is open: no call at all');
  figures.push(`stalled: 50 requests → 50 × 503 dependency_unavailable, ${api.callsTo('stall')} calls`);

  // 4. erroring (500): the breaker opens within its volume; cached users still get their facts
  api.mode = 'error';
  const callsBefore = api.callsTo('facts');
  const errorStarted = performance.now();
  const erroring = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(e2e, 'facts', `erroring-${i}`)));
  assert.deepEqual(tally(erroring), { '503 dependency_unavailable': 40 });
  const errorCalls = api.callsTo('facts') - callsBefore;
  // up to the volume before it opens, plus the calls already open then, plus one half-open probe per reset period
  const probes = 1 + Math.ceil((performance.now() - errorStarted) / RESET_TIMEOUT_MS);
  assert.ok(errorCalls <= VOLUME_THRESHOLD + MAX_PENDING + probes, `${errorCalls} calls to an erroring API for 40 users`);
  for (const subject of called) assert.deepEqual((await ask(e2e, 'facts', subject)).facts, { amr: ['pwd', 'otp'], aal: 2 }, 'the cache holds while the API fails');
  figures.push(`erroring: 40 users → 40 × 503 dependency_unavailable, ${errorCalls} calls (breaker opened)`);

  // 5. down: connection refused; fail-closed 503, fail-open a passport without user facts
  const port = api.port;
  await api.stop();
  assert.deepEqual(tally(await Promise.all(Array.from({ length: 20 }, (_, i) => ask(e2e, 'facts', `down-${i}`)))), { '503 dependency_unavailable': 20 });
  const failedOpen = await ask(e2e, 'open', 'down-open');
  assert.equal(failedOpen.status, 200);
  assert.deepEqual(failedOpen.facts, { amr: [], aal: 0 }, 'fail-open: a passport without user facts');

  // 6. back: a half-open probe succeeds and new users get their facts again
  api.mode = 'answer';
  await api.start(port);
  const backAt = performance.now();
  let recovered: Answer | undefined;
  for (let attempt = 0; recovered === undefined; attempt++) {
    const answer = await ask(e2e, 'facts', `recovering-${attempt}`);
    if (answer.status === 200) recovered = answer;
    else assert.equal(answer.reason, 'dependency_unavailable');
    assert.ok(performance.now() - backAt < WAIT_MS, 'recovered within a minute');
    if (recovered === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(recovered.facts, { amr: ['pwd', 'otp'], aal: 2 });
  figures.push(`down: 20 × 503 dependency_unavailable, fail-open route 200 with aal 0; recovered ${Math.round(performance.now() - backAt)} ms after the API came back (breaker reset ${RESET_TIMEOUT_MS} ms)`);
  t.diagnostic(`user API: ${figures.join('; ')}`);
});
