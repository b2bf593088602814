// The user API client against a real local HTTP server: coalescing, the cache, failures, the breaker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Breakers } from '../breaker/breakers.js';
import { userApiConfig } from './config.js';
import type { UserApiOutcome } from '../../pipeline/services.js';
import { UserApiClient } from './user-api.js';

interface UserApi {
  readonly baseUrl: string;
  /** the paths the API was asked for, in order */
  readonly calls: string[];
}

async function startUserApi(t: { after: (fn: () => unknown) => void }, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<UserApi> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    calls.push(req.url ?? '');
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/users/`, calls };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/**
 * The call timeout is the schema's largest: these tests are about answers, not speed, and a local
 * server on a busy machine may take longer than the 100 ms default to answer.
 */
const GENEROUS_TIMEOUT_MS = 10_000;

function clientFor(baseUrl: string, clock: { ms: number }, extra: Record<string, unknown> = {}, calls: [UserApiOutcome, number | undefined][] = []): UserApiClient {
  const config = userApiConfig.parse({ baseUrl, cacheTtlMs: 1000, timeoutMs: GENEROUS_TIMEOUT_MS, ...extra });
  return new UserApiClient(config, {
    now: () => clock.ms,
    breakers: new Breakers({ onStateChange: () => undefined }, () => clock.ms),
    userApiCalls: { userApiCall: (outcome, seconds) => { calls.push([outcome, seconds]); } },
  });
}

test('concurrent lookups of one subject make one call; a fresh entry none; an expired one a new call', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const api = await startUserApi(t, (_req, res) => { void held.then(() => { json(res, 200, { amr: ['pwd', 'otp'], aal: 2, name: 'ignored' }); }); });
  const clock = { ms: 1_000_000 };
  const client = clientFor(api.baseUrl, clock);
  const lookups = Array.from({ length: 5 }, () => client.lookup('user/42'));
  release();
  for (const found of await Promise.all(lookups)) assert.deepEqual(found, { ok: true, facts: { amr: ['pwd', 'otp'], aal: 2 } });
  assert.deepEqual(api.calls, ['/users/user%2F42'], 'one call, the subject URL-encoded');
  assert.ok((await client.lookup('user/42')).ok);
  assert.equal(api.calls.length, 1, 'a cache hit makes no call');
  clock.ms += 1001;
  assert.ok((await client.lookup('user/42')).ok);
  assert.equal(api.calls.length, 2, 'past the TTL the API is asked again');
});

test('an error status, a body of the wrong shape and an unreachable API are failures with a detail, never a throw', async (t) => {
  const api = await startUserApi(t, (req, res) => {
    if (req.url === '/users/down') json(res, 500, { error: 'boom' });
    else json(res, 200, { amr: 'pwd', aal: 7 });
  });
  const clock = { ms: 0 };
  const client = clientFor(api.baseUrl, clock);
  const down = await client.lookup('down');
  assert.ok(!down.ok && down.detail.includes('answered 500'), JSON.stringify(down));
  const shape = await client.lookup('odd');
  assert.ok(!shape.ok && shape.detail.includes('unexpected body'), JSON.stringify(shape));
  const closed = await clientFor('http://127.0.0.1:1/users/', clock).lookup('x');
  assert.ok(!closed.ok, 'nothing listens on port 1');
});

test('the breaker opens after failures: the API is then not called at all', async (t) => {
  const api = await startUserApi(t, (_req, res) => { json(res, 503, {}); });
  const clock = { ms: 0 };
  const client = clientFor(api.baseUrl, clock, { breaker: { volumeThreshold: 2, resetTimeoutMs: 5000 } });
  for (let i = 0; i < 5; i++) assert.ok(!(await client.lookup(`u${i}`)).ok);
  assert.equal(api.calls.length, 2, 'two failures open it; the next three are refused by the breaker');
  const refused = await client.lookup('u9');
  assert.ok(!refused.ok && refused.detail.includes('breaker open'), JSON.stringify(refused));
});

test('404 and 410 say "no such user": a definite, cached answer that never opens the breaker; other 4xx are failures that do not open it either', async (t) => {
  const api = await startUserApi(t, (req, res) => {
    if (req.url?.startsWith('/users/gone')) json(res, 410, {});
    else if (req.url?.startsWith('/users/forbidden')) json(res, 403, {});
    else json(res, 404, { error: 'no such user' });
  });
  const clock = { ms: 0 };
  // a breaker that opens on two failures: ten 4xx answers must not open it
  const client = clientFor(api.baseUrl, clock, { breaker: { volumeThreshold: 2, resetTimeoutMs: 5000 } });
  for (let i = 0; i < 5; i++) {
    const missing = await client.lookup(`nobody${i}`);
    assert.ok(!missing.ok && missing.unknown === true && missing.detail.includes('answered 404'), JSON.stringify(missing));
    const forbidden = await client.lookup(`forbidden${i}`);
    assert.ok(!forbidden.ok && forbidden.unknown === undefined && forbidden.detail.includes('answered 403'), JSON.stringify(forbidden));
  }
  const gone = await client.lookup('gone');
  assert.ok(!gone.ok && gone.unknown === true, JSON.stringify(gone));
  assert.equal(api.calls.length, 11, 'every lookup reached the API: the breaker stayed closed');
  const again = await client.lookup('nobody0');
  assert.ok(!again.ok && again.unknown === true, JSON.stringify(again));
  assert.equal(api.calls.length, 11, '"no such user" is cached like facts');
  clock.ms += 1001;
  await client.lookup('nobody0');
  assert.equal(api.calls.length, 12, 'and asked again past the TTL');
});

test('release (its route table replaced by a reload) drops the cache, keeps no later answer, and still answers lookups', async (t) => {
  let hold: Promise<void> = Promise.resolve();
  const api = await startUserApi(t, (_req, res) => { void hold.then(() => { json(res, 200, { amr: ['pwd'], aal: 1 }); }); });
  const clock = { ms: 0 };
  // the API's time limit at its most: the verdict must not depend on how busy the machine is
  const client = clientFor(api.baseUrl, clock, { timeoutMs: 10_000 });
  assert.ok((await client.lookup('a')).ok);
  assert.ok((await client.lookup('a')).ok);
  assert.equal(api.calls.length, 1, 'cached before the release');
  let answer!: () => void;
  hold = new Promise<void>((resolve) => { answer = resolve; });
  const inFlight = client.lookup('b');
  client.release();
  answer();
  assert.ok((await inFlight).ok, 'a lookup under way when released still answers');
  assert.ok((await client.lookup('a')).ok, 'a lookup after release still answers');
  assert.ok((await client.lookup('b')).ok);
  assert.deepEqual(api.calls, ['/users/a', '/users/b', '/users/a', '/users/b'], 'nothing cached: neither the old entry nor the answer that arrived after release');
});

test('every lookup that asks the API, or would have but for its breaker, is counted by outcome; calls are timed, cache hits are not counted', async (t) => {
  const api = await startUserApi(t, (req, res) => {
    const answers: Record<string, () => void> = {
      '/users/known': () => { json(res, 200, { amr: ['pwd'], aal: 1 }); },
      '/users/gone': () => { json(res, 410, {}); },
      '/users/bad': () => { json(res, 400, {}); },
      '/users/odd': () => { json(res, 200, { amr: 'pwd' }); },
      '/users/text': () => { res.writeHead(200, { 'content-type': 'application/json' }).end('not json'); },
      '/users/silent': () => undefined, // never answers: the call's own timeout ends it
    };
    (answers[req.url ?? ''] ?? (() => { json(res, 502, {}); }))();
  });
  const clock = { ms: 0 };
  const calls: [UserApiOutcome, number | undefined][] = [];
  const client = clientFor(api.baseUrl, clock, { breaker: { volumeThreshold: 100 } }, calls);
  for (const subject of ['known', 'known', 'gone', 'bad', 'odd', 'text', 'down']) await client.lookup(subject);
  await clientFor('http://127.0.0.1:1/users/', clock, {}, calls).lookup('x');
  // the shortest timeout the schema allows against a server that never answers: fires whatever the machine's speed
  assert.equal((await clientFor(api.baseUrl, clock, { timeoutMs: 1 }, calls).lookup('silent')).ok, false);
  assert.deepEqual(calls.map(([outcome]) => outcome), ['ok', 'unknown_user', 'refused', 'invalid_answer', 'invalid_answer', 'server_error', 'unreachable', 'timeout'], 'the second "known" was a cache hit');
  for (const [outcome, seconds] of calls) assert.ok(seconds !== undefined && seconds >= 0, `${outcome} is timed`);

  const breakerCalls: [UserApiOutcome, number | undefined][] = [];
  const tripping = clientFor(api.baseUrl, clock, { breaker: { volumeThreshold: 1, resetTimeoutMs: 5000 } }, breakerCalls);
  await tripping.lookup('down');
  await tripping.lookup('down-again');
  assert.deepEqual(breakerCalls, [['server_error', breakerCalls[0]![1]], ['breaker_open', undefined]], 'refused by the open breaker: counted, not called, not timed');
});

test('at most maxPendingCalls calls are open at once: a lookup beyond them fails at once, and the breaker does not count it', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const api = await startUserApi(t, (_req, res) => { void held.then(() => { json(res, 200, { amr: ['pwd'], aal: 1 }); }); });
  const clock = { ms: 1_000_000 };
  // one failure would open this breaker: the refusals beyond the bound must not
  const calls: [UserApiOutcome, number | undefined][] = [];
  const client = clientFor(api.baseUrl, clock, { maxPendingCalls: 3, breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 } }, calls);
  const admitted = ['a', 'b', 'c'].map((subject) => client.lookup(subject));
  const beyond = await client.lookup('d');
  assert.deepEqual(beyond, { ok: false, detail: `user API ${api.baseUrl}: 3 calls pending already (maxPendingCalls)` });
  assert.deepEqual(calls, [['too_many_pending', undefined]], 'counted, not called, not timed');
  // a lookup of a subject already asked for joins its call: no fourth call, no refusal
  const joined = client.lookup('a');
  release();
  for (const found of await Promise.all([...admitted, joined])) assert.ok(found.ok);
  assert.deepEqual(api.calls.sort(), ['/users/a', '/users/b', '/users/c']);
  assert.ok((await client.lookup('d')).ok, 'once the calls are answered the next lookup is made, the breaker still closed');
});
