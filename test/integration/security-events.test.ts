// Security events end to end, through the Envoy stand-in: forged, replayed and delayed signed requests
// become events with the right fields (log, metrics, the FDS Redis stream) at trust `credential`, which
// no disable rule counts; a rule counting a revoked device that keeps signing (trust `verified`)
// disables the account after N of them and the next genuine request gets 403 account_disabled; two gatehouses
// sharing one redis-server share the count and the disable; a Redis outage changes no answer and
// drops (counted) what the buffer cannot hold; the admin API re-enables, and refuses without its token.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { signRequest } from '../../sdk/app/signing.js';
import { anotherDevice, createWorld, type World } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { promtoolCheck, skipWithoutPromtool } from '../support/promtool.js';
import { skipWithoutRedis, TestRedisServer } from '../support/redis.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const BODY = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
const SUBJECT = 'user-42';
const TOKEN = 'test-admin-token-0123456789abcdef';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function configFor(world: World, extra: string): Promise<string> {
  return `${extra}
routes:
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${await signedFilterConfig(world)}
`;
}

// the forgery codes are listed to show they never count: their events are at trust credential
const RULES = `
securityEvents:
  maxBuffered: 3
  flushTimeoutMs: 300
  rules:
    - { name: revoked-device, codes: [device_revoked, signature_invalid, signature_replayed, credential_wrong_device, digest_mismatch], threshold: 3, windowSeconds: 60 }
`;

/** who signs: the world's device by default, or another device of the same account */
interface Holder {
  readonly credential: string;
  readonly ephemeralSigner: World['ephemeralSigner'];
}

async function signed(world: World, options: { now?: number; id?: string; path?: string; as?: Holder } = {}): Promise<ClientRequest> {
  const path = options.path ?? '/pay/transfers';
  const holder = options.as ?? world;
  const headers = await signRequest(
    { method: 'POST', authority: AUTHORITY, path, query: '', body: Buffer.from(BODY) },
    { credential: holder.credential, signer: holder.ephemeralSigner, now: options.now ?? nowSeconds() },
  );
  return {
    method: 'POST',
    path,
    authority: AUTHORITY,
    headers: [...Object.entries(headers), ['content-type', 'application/json'], ...(options.id === undefined ? [] : [['x-request-id', options.id] as [string, string]])],
    body: BODY,
  };
}

/** signed for one path, sent to another: the signature does not verify, the credential does */
async function forged(world: World, id: string): Promise<ClientRequest> {
  return { ...(await signed(world, { id })), path: '/pay/elsewhere' };
}

function tokenFile(t: { after: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-admin-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'admin.token');
  writeFileSync(file, `${TOKEN}\n`);
  return file;
}

async function admin(e2e: EndToEnd, path: string, options: { method?: string; token?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}${path}`, {
    method: options.method ?? 'GET',
    headers: { ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }), 'content-type': 'application/json' },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

async function until<T>(attempt: () => T | Promise<T>, done: (value: T) => boolean, what: string, ms = 3_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await attempt();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const events = (e2e: EndToEnd): Record<string, unknown>[] => e2e.logs.filter((l) => l['msg'] === 'security_event');

async function metrics(e2e: EndToEnd): Promise<string> {
  return (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
}

test('forged, replayed and delayed requests become events with their code, route, decision id, subject, trust and client address', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, ''));
  await e2e.gatehouse.deps.stores.devices.put(world.device);

  const bad = await e2e.envoy.request(await forged(world, 'ev-forged'));
  assert.equal(get(bad.headers, 'x-gatehouse-reason'), 'signature_invalid');
  const genuine = await signed(world, { id: 'ev-genuine' });
  assert.equal((await e2e.envoy.request(genuine)).status, 200);
  const replay = await e2e.envoy.request({ ...genuine, headers: genuine.headers!.map(([n, v]) => [n, n === 'x-request-id' ? 'ev-replay' : v]) });
  assert.equal(get(replay.headers, 'x-gatehouse-reason'), 'signature_replayed');
  const replayDecision = get(replay.headers, 'x-gatehouse-decision-id');
  assert.match(replayDecision ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal((await e2e.envoy.request(await signed(world, { id: 'ev-stale', now: nowSeconds() - 600 }))).status, 401);
  const invalidCredential = await signed(world, { id: 'ev-claimed' });
  const tamperedCredential: ClientRequest = { ...invalidCredential, headers: invalidCredential.headers!.map(([n, v]) => [n, n === 'device-credential' ? `${v.slice(0, -4)}AAAA` : v]) };
  assert.equal(get((await e2e.envoy.request(tamperedCredential)).headers, 'x-gatehouse-reason'), 'credential_invalid');
  // over ext_authz too: a signed GET sent to another path
  const getHeaders = await signRequest({ method: 'GET', authority: AUTHORITY, path: '/pay/history', query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
  const viaAuthz = await e2e.authz.request({ method: 'GET', path: '/pay/other', authority: AUTHORITY, headers: [...Object.entries(getHeaders), ['x-request-id', 'ev-authz']] });
  assert.equal(viaAuthz.status, 401);
  // not suspicious: an unsigned request is no event
  assert.equal((await e2e.envoy.request({ method: 'GET', path: '/pay/x', authority: AUTHORITY, headers: [['x-request-id', 'ev-unsigned']] })).status, 401);

  const seen = await until(() => events(e2e), (l) => l.length >= 5, 'five events');
  const byId = new Map(seen.map((l) => [l['request_id'], l]));
  assert.equal(byId.has('ev-unsigned'), false, 'signature_missing is not suspicious');
  assert.equal(byId.has('ev-genuine'), false);
  const forgedEvent = byId.get('ev-forged')!;
  assert.match(String(forgedEvent['decision_id']), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "gatehouse's own decision id");
  assert.deepEqual(
    { code: forgedEvent['code'], category: forgedEvent['category'], status: forgedEvent['status'], route: forgedEvent['route'], method: forgedEvent['method'], subject: forgedEvent['subject'], device: forgedEvent['device'], trust: forgedEvent['trust'], level: forgedEvent['level'] },
    { code: 'signature_invalid', category: 'forgery', status: '401', route: 'pay', method: 'POST', subject: SUBJECT, device: world.device.deviceId, trust: 'credential', level: 'warn' },
  );
  assert.match(String(forgedEvent['client_address']), /^127\.0\.0\.1:\d+$|^[\d.:a-f]+$/, 'the downstream address the stand-in reports');
  assert.ok(!Number.isNaN(Date.parse(String(forgedEvent['time']))));
  // a replay verifies as well as the original did: anyone who saw the request can send it again
  assert.deepEqual([byId.get('ev-replay')!['code'], byId.get('ev-replay')!['trust'], byId.get('ev-replay')!['subject']], ['signature_replayed', 'credential', SUBJECT]);
  assert.deepEqual([byId.get('ev-stale')!['code'], byId.get('ev-stale')!['trust']], ['signature_stale', 'credential']);
  assert.deepEqual([byId.get('ev-authz')!['code'], byId.get('ev-authz')!['method'], byId.get('ev-authz')!['subject']], ['signature_invalid', 'GET', SUBJECT], 'ext_authz reports too');
  assert.deepEqual([byId.get('ev-claimed')!['code'], byId.get('ev-claimed')!['trust'], byId.get('ev-claimed')!['subject']], ['credential_invalid', 'claimed', SUBJECT], 'an unverified credential is a claim');
  assert.doesNotMatch(JSON.stringify(seen), /eyJ/, 'no credential in an event');

  const text = await metrics(e2e);
  assert.match(text, /^gatehouse_security_events_total\{code="signature_invalid",route="pay"\} 2$/m, 'one over ext_proc, one over ext_authz');
  assert.match(text, /^gatehouse_security_events_total\{code="signature_replayed",route="pay"\} 1$/m);
  if (skipWithoutPromtool() === false) {
    const { code, out } = await promtoolCheck(text);
    assert.equal(code, 0, out);
  }
});

test('an event carries the trace id of its request: the caller\'s traceparent (ext_proc and ext_authz), or the trace gatehouse started; the same as the access line\'s', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, ''));
  await e2e.gatehouse.deps.stores.devices.put(world.device);
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const traced = (request: ClientRequest, traceparent: string): ClientRequest => ({ ...request, headers: [...request.headers!, ['traceparent', traceparent]] });

  assert.equal((await e2e.envoy.request(traced(await forged(world, 'tr-proc'), `00-${TRACE}-00f067aa0ba902b7-01`))).status, 401);
  assert.equal((await e2e.envoy.request(await forged(world, 'tr-none'))).status, 401);
  assert.equal((await e2e.envoy.request(traced(await forged(world, 'tr-bad'), `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`))).status, 401);
  const getHeaders = await signRequest({ method: 'GET', authority: AUTHORITY, path: '/pay/history', query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
  const authzTrace = 'a'.repeat(31) + 'b';
  assert.equal((await e2e.authz.request({ method: 'GET', path: '/pay/other', authority: AUTHORITY, headers: [...Object.entries(getHeaders), ['x-request-id', 'tr-authz'], ['traceparent', `00-${authzTrace}-00f067aa0ba902b7-00`]] })).status, 401);
  assert.equal((await e2e.authz.request({ method: 'GET', path: '/pay/other', authority: AUTHORITY, headers: [...Object.entries(getHeaders), ['x-request-id', 'tr-authz-none']] })).status, 401);

  const seen = await until(() => events(e2e), (l) => l.length >= 5, 'five events');
  const traceOf = (id: string): unknown => seen.find((l) => l['request_id'] === id)?.['trace_id'];
  assert.equal(traceOf('tr-proc'), TRACE, 'ext_proc: the caller\'s trace');
  assert.equal(traceOf('tr-authz'), authzTrace, 'ext_authz: the caller\'s trace');
  assert.equal(traceOf('tr-authz-none'), undefined, 'ext_authz without a traceparent: no trace, no field (never empty)');
  for (const id of ['tr-none', 'tr-bad']) {
    assert.match(String(traceOf(id)), /^[0-9a-f]{32}$/, `${id}: the trace gatehouse started`);
    assert.notEqual(traceOf(id), TRACE);
  }
  for (const id of ['tr-proc', 'tr-none', 'tr-bad', 'tr-authz']) {
    assert.equal((await e2e.accessLine(id))['trace_id'], traceOf(id), `${id}: the event joins its access line and its trace`);
  }
  const recent = e2e.gatehouse.security.sink.recent().find((e) => e['request_id'] === 'tr-proc');
  assert.equal(recent?.['trace_id'], TRACE, 'GET /admin/security-events shows it too');
});

test('forged, replayed and tampered requests never disable the account; a revoked device that keeps signing does; the next genuine request gets 403 account_disabled; the admin API re-enables it, with its token only', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, `${RULES}admin: { tokenFile: "${tokenFile(t)}" }\n`));
  await e2e.gatehouse.deps.stores.devices.put(world.device);
  const stolen = await anotherDevice(world);
  await e2e.gatehouse.deps.stores.devices.put(stolen.device);
  assert.ok(e2e.logs.some((l) => l['level'] === 'warn' && String(l['msg']).startsWith('SECURITY EVENTS GO TO THE LOG ONLY')), 'memory stores say so at start');

  assert.equal((await e2e.envoy.request(await signed(world))).status, 200, 'genuine before');
  // what anyone who saw one request (or only the credential) can do, three times each
  for (let i = 0; i < 3; i++) {
    assert.equal((await e2e.envoy.request(await forged(world, `forged-${i}`))).status, 401);
    const captured = await signed(world, { id: `captured-${i}` });
    assert.equal((await e2e.envoy.request({ ...captured, body: BODY.replace('10.00', '99.00') })).status, 400, 'tampered body: digest_mismatch');
    // the nonce is claimed at the headers (before anything reaches the upstream), so the tampered
    // copy used it up: the original, delivered after it, is a replay too
    assert.equal((await e2e.envoy.request(captured)).status, 401, 'the captured request itself, delivered after its tampered copy: replayed');
    assert.equal((await e2e.envoy.request(captured)).status, 401, 'replayed');
  }
  await until(() => e2e.gatehouse.security.sink.pending, (n) => n === 0, 'settled');
  assert.deepEqual(await e2e.gatehouse.deps.stores.accounts.isDisabled(SUBJECT), { ok: true, disabled: undefined }, 'twelve events at trust credential: not disabled');
  assert.deepEqual(new Set(events(e2e).map((e) => e['trust'])), new Set(['credential']));
  assert.equal((await e2e.envoy.request(await signed(world))).status, 200, 'the customer is still served');

  // the customer's other phone is stolen and revoked; its key keeps signing fresh requests
  await e2e.gatehouse.deps.stores.devices.revoke(stolen.device.deviceId, Date.now());
  for (let i = 0; i < 3; i++) assert.equal((await e2e.envoy.request(await signed(world, { id: `stolen-${i}`, as: stolen }))).status, 403);
  await until(() => e2e.logs.find((l) => l['msg'] === 'account disabled by rule'), (l) => l !== undefined, 'disabled');
  assert.deepEqual(events(e2e).filter((e) => e['code'] === 'device_revoked').map((e) => e['trust']), ['verified', 'verified', 'verified']);
  const refused = await e2e.envoy.request(await signed(world, { id: 'after-disable' }));
  assert.equal(refused.status, 403);
  assert.equal(get(refused.headers, 'x-gatehouse-reason'), 'account_disabled');
  const line = await e2e.accessLine('after-disable');
  assert.match(String(line['detail']), /disabled by gatehouse-rule:revoked-device/);
  await until(() => events(e2e), (l) => l.some((e) => e['request_id'] === 'after-disable' && e['code'] === 'account_disabled' && e['trust'] === 'verified'), 'the attempt is an event too');
  assert.match(await metrics(e2e), /^gatehouse_security_accounts_disabled_total\{rule="revoked-device"\} 1$/m);

  // the admin API: no token, a wrong one, then the right one
  const none = await admin(e2e, '/admin/accounts/enable', { method: 'POST', body: { subject: SUBJECT } });
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="gatehouse-admin"');
  assert.equal((await admin(e2e, '/admin/accounts/enable', { method: 'POST', token: `${TOKEN}x`, body: { subject: SUBJECT } })).status, 401);
  assert.equal((await admin(e2e, '/admin/accounts', { token: 'short' })).status, 401);
  const listed = await admin(e2e, '/admin/accounts', { token: TOKEN });
  assert.equal(listed.status, 200);
  assert.deepEqual((listed.body['accounts'] as { subject: string; by: string }[]).map((a) => [a.subject, a.by]), [[SUBJECT, 'gatehouse-rule:revoked-device']]);
  assert.equal((await admin(e2e, '/admin/accounts/enable', { method: 'POST', token: TOKEN, body: { subject: '' } })).status, 400, 'bad input is refused, not crashed on');
  assert.equal((await admin(e2e, '/admin/accounts/enable', { method: 'GET', token: TOKEN })).status, 405);
  const enabled = await admin(e2e, '/admin/accounts/enable', { method: 'POST', token: TOKEN, body: { subject: SUBJECT, reason: 'customer verified by phone' } });
  assert.deepEqual([enabled.status, enabled.body], [200, { subject: SUBJECT, enabled: true, wasDisabled: true }]);
  assert.equal((await e2e.envoy.request(await signed(world))).status, 200, 'genuine after re-enable');
  // the window was cleared: one more request of the revoked device does not disable it again at once
  assert.equal((await e2e.envoy.request(await signed(world, { id: 'after-enable', as: stolen }))).status, 403);
  await until(() => e2e.gatehouse.security.sink.pending, (n) => n === 0, 'settled');
  assert.deepEqual(await e2e.gatehouse.deps.stores.accounts.isDisabled(SUBJECT), { ok: true, disabled: undefined });

  const audits = e2e.logs.filter((l) => l['msg'] === 'admin_audit');
  assert.ok(audits.some((a) => a['action'] === 'accounts.enable' && a['result'] === 'unauthorized' && a['status'] === 401));
  const ok = audits.find((a) => a['action'] === 'accounts.enable' && a['result'] === 'ok')!;
  assert.equal(ok['subject'], SUBJECT);
  assert.equal(ok['reason'], 'customer verified by phone');
  assert.match(String(ok['token_id']), /^[0-9a-f]{8}$/);
  assert.doesNotMatch(JSON.stringify(audits), new RegExp(TOKEN), 'the token is never logged');

  // disable by hand
  assert.equal((await admin(e2e, '/admin/accounts/disable', { method: 'POST', token: TOKEN, body: { subject: SUBJECT, reason: 'manual' } })).status, 200);
  assert.equal((await e2e.envoy.request(await signed(world))).status, 403);
  const one = await admin(e2e, `/admin/accounts?subject=${SUBJECT}`, { token: TOKEN });
  assert.equal((one.body['disabled'] as { by: string }).by, 'admin-api');
});

test('without admin.tokenFile the admin API refuses every call', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, ''));
  for (const [path, method] of [['/admin/accounts', 'GET'], ['/admin/accounts/enable', 'POST'], ['/admin/security-events', 'GET']] as const) {
    const answer = await admin(e2e, path, { method, token: TOKEN, ...(method === 'POST' ? { body: { subject: SUBJECT } } : {}) });
    assert.deepEqual([answer.status, answer.body['error']], [403, 'admin_api_disabled'], path);
  }
});

test('two gatehouses sharing one redis-server share the count and the disable; events reach the FDS stream', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const world = await createWorld({ now: nowSeconds() });
  // accountCache.ttlMs: how long a replica may keep answering from its cached "enabled"
  const yaml = await configFor(world, `stores: { kind: redis, keyPrefix: "sec:", redis: { url: "${redis.url}" }, accountCache: { ttlMs: 400 } }\n${RULES}`);
  const a = await endToEnd(t, yaml);
  const b = await endToEnd(t, yaml);
  const c = await endToEnd(t, yaml);
  await a.gatehouse.deps.stores.devices.put(world.device);
  const stolen = await anotherDevice(world);
  await a.gatehouse.deps.stores.devices.put(stolen.device);
  const client = new Redis(redis.port, '127.0.0.1');
  t.after(() => { client.disconnect(); });
  // c serves the account before the attack: its cache holds "enabled"
  assert.equal((await c.envoy.request(await signed(world))).status, 200);
  await a.gatehouse.deps.stores.devices.revoke(stolen.device.deviceId, Date.now());
  // the revoked device signs twice here, once there: only together do they reach the threshold
  assert.equal((await a.envoy.request(await signed(world, { id: 'shared-0', as: stolen }))).status, 403);
  assert.equal((await b.envoy.request(await signed(world, { id: 'shared-1', as: stolen }))).status, 403);
  await until(() => a.gatehouse.security.sink.pending + b.gatehouse.security.sink.pending, (n) => n === 0, 'counted');
  assert.equal(await client.exists(`sec:{${SUBJECT}}:disabled`), 0, 'two of three: not yet');
  assert.equal((await a.envoy.request(await signed(world, { id: 'shared-2', as: stolen }))).status, 403);
  await until(() => a.gatehouse.security.sink.pending, (n) => n === 0, 'counted');
  // disabled through replica a: a refuses the account's other device at once, b (which read the
  // account with shared-1) within accountCache.ttlMs
  assert.equal(get((await a.envoy.request(await signed(world))).headers, 'x-gatehouse-reason'), 'account_disabled');
  await until(async () => get((await b.envoy.request(await signed(world, { id: `shared-after-${Math.random()}` }))).headers, 'x-gatehouse-reason'), (reason) => reason === 'account_disabled', 'b refuses', 2_000);
  // c refuses once its cached answer is older than accountCache.ttlMs (400 ms), not later
  const disabledAt = performance.now();
  await until(async () => (await c.envoy.request(await signed(world))).status, (status) => status === 403, 'c refuses', 2_000);
  assert.ok(performance.now() - disabledAt < 400 + 300, `within the cache ttl (${Math.round(performance.now() - disabledAt)} ms)`);

  const entries = await client.xrange('sec:security-events', '-', '+');
  const parsed = entries.map(([, fields]) => Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i]!, fields[2 * i + 1]!])));
  assert.deepEqual(parsed.filter((e) => e['code'] === 'device_revoked').map((e) => e['request_id']).sort(), ['shared-0', 'shared-1', 'shared-2']);
  assert.ok(parsed.some((e) => String(e['request_id']).startsWith('shared-after-') && e['code'] === 'account_disabled'));
  const first = parsed.find((e) => e['request_id'] === 'shared-0')!;
  assert.deepEqual(Object.keys(first).sort(), ['category', 'client_address', 'code', 'decision_id', 'detail', 'device', 'event_id', 'instance', 'method', 'request_id', 'route', 'status', 'subject', 'time', 'trace_id', 'trust', 'v'].sort());
  assert.match(first['trace_id']!, /^[0-9a-f]{32}$/, 'the trace gatehouse started (no traceparent came)');
  assert.equal(first['subject'], SUBJECT);
  assert.ok(new Set(parsed.map((e) => e['instance'])).size >= 1, 'each event names its replica');
  const record = JSON.parse((await client.get(`sec:{${SUBJECT}}:disabled`))!) as Record<string, unknown>;
  assert.equal(record['by'], 'gatehouse-rule:revoked-device');
  assert.equal(await client.zcard(`sec:{${SUBJECT}}:rule:revoked-device`), 3, 'one shared window');
});

test('Redis down: requests keep their answers at once, events beyond the buffer are dropped and counted, stop is bounded', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, `stores: { kind: redis, keyPrefix: "down:", redis: { url: "${redis.url}" } }\n${RULES}`));
  await e2e.gatehouse.deps.stores.devices.put(world.device);
  await redis.stop();
  const started = performance.now();
  for (let i = 0; i < 8; i++) {
    const answer = await e2e.envoy.request(await forged(world, `down-${i}`));
    assert.equal(get(answer.headers, 'x-gatehouse-reason'), 'signature_invalid', 'the normal answer');
  }
  assert.ok(performance.now() - started < 3_000, 'no request waits for the sink');
  assert.ok(e2e.gatehouse.security.sink.pending <= 3, 'the buffer holds its bound (maxBuffered: 3)');
  const text = await metrics(e2e);
  const dropped = Number(/^gatehouse_security_events_dropped_total\{reason="buffer_full"\} (\d+)$/m.exec(text)?.[1]);
  assert.ok(dropped >= 5, `dropped and counted: ${dropped}`);
  assert.match(text, /^gatehouse_security_events_total\{code="signature_invalid",route="pay"\} 8$/m, 'every event is still logged and counted');
  const stopping = performance.now();
  await e2e.gatehouse.stop(100);
  assert.ok(performance.now() - stopping < 2_500, `stop is bounded by flushTimeoutMs (${Math.round(performance.now() - stopping)} ms)`);
  assert.ok(e2e.logs.some((l) => l['msg'] === 'security events dropped' && l['reason'] === 'shutdown'), 'what could not be flushed is dropped at shutdown, and said');
});

test('Redis frozen (answers nothing): answers stay fast, events wait within the bound and reach the stream once it thaws', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(async () => { redis.thaw(); await redis.close(); });
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await configFor(world, `stores: { kind: redis, keyPrefix: "frozen:", redis: { url: "${redis.url}" } }\n${RULES}`));
  redis.freeze();
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const answer = await e2e.envoy.request(await forged(world, `frozen-${i}`));
    assert.equal(get(answer.headers, 'x-gatehouse-reason'), 'signature_invalid');
    assert.ok(performance.now() - started < 500, `answered without waiting for Redis (${Math.round(performance.now() - started)} ms)`);
  }
  assert.ok(e2e.gatehouse.security.sink.pending <= 3);
  redis.thaw();
  await until(() => e2e.gatehouse.security.sink.pending, (n) => n === 0, 'flushed after the thaw', 10_000);
  const client = new Redis(redis.port, '127.0.0.1');
  t.after(() => { client.disconnect(); });
  const written = (await client.xrange('frozen:security-events', '-', '+')).map(([, fields]) => fields[fields.indexOf('request_id') + 1]);
  const dropped = Number(/^gatehouse_security_events_dropped_total\{reason="buffer_full"\} (\d+)$/m.exec(await metrics(e2e))?.[1]);
  assert.equal(new Set(written).size + dropped, 5, `every event written or counted as dropped (${JSON.stringify(written)}, dropped ${dropped})`);
});
