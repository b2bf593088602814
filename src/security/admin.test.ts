// The admin API on its own: bad input is refused with a status and a code (never a crash or a hang),
// a token file that goes missing refuses calls, and a missing token file stops the start naming the field.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startAdminServer } from '../admin/server.js';
import { parseConfig } from '../../test/support/config.js';
import { startGatehouse, StartupError } from '../gatehouse.js';
import { createMemoryStores } from '../stores/index.js';
import { enrolledDevice } from '../stores/test-devices.js';
import { adminApiRoutes } from './admin.js';
import { DisableRules, MemoryRuleWindows, type RuleWindows } from './rules.js';
import { storeFailure, type AccountStatus } from '../stores/types.js';
import { FAILED_TOKEN_WINDOW_MS, FAILED_TOKENS_PER_SOURCE } from './admin.js';
import { SecurityEventSink } from './sink.js';

const TOKEN = 'unit-admin-token-0123456789';

async function setUp(t: { after: (fn: () => unknown) => void }, over: { now?: () => number; windows?: RuleWindows; accounts?: Partial<AccountStatus> } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-admin-unit-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN);
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ base: null }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const memory = createMemoryStores();
  const accounts: AccountStatus = Object.assign(Object.create(memory.accounts) as AccountStatus, over.accounts ?? {});
  const stores = { ...memory, accounts };
  const rules = new DisableRules([], over.windows ?? new MemoryRuleWindows(), stores.accounts);
  const sink = new SecurityEventSink({ logger, stream: undefined, rules, maxBuffered: 10, batchSize: 10, instance: 'unit' });
  const registry = new Registry();
  const admin = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: { render: () => Promise.resolve(''), contentType: 'text/plain' },
    health: { live: () => true, ready: () => true },
    apiRoutes: adminApiRoutes({ tokenFile, accounts: stores.accounts, devices: stores.devices, rules, sink, logger, registry, now: over.now ?? (() => 1_800_000_000_000) }),
  });
  t.after(async () => {
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const call = async (path: string, init: { method?: string; body?: string; token?: string } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> => {
    const response = await fetch(`http://127.0.0.1:${admin.port}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? TOKEN}` },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
  };
  return { call, tokenFile, lines, port: admin.port, stores, registry };
}

test('admin API: bad bodies and parameters are refused with a status and a code', async (t) => {
  const { call, lines } = await setUp(t);
  const cases: [string, { method?: string; body?: string }, number, string][] = [
    ['/admin/accounts/disable', { method: 'POST', body: 'not json' }, 400, 'bad_request'],
    ['/admin/accounts/disable', { method: 'POST', body: '[]' }, 400, 'bad_request'],
    ['/admin/accounts/disable', { method: 'POST', body: JSON.stringify({ subject: 'u' }) }, 400, 'bad_request'],
    ['/admin/accounts/disable', { method: 'POST', body: JSON.stringify({ subject: 'u', reason: 'x'.repeat(201) }) }, 400, 'bad_request'],
    ['/admin/accounts/enable', { method: 'POST', body: JSON.stringify({ subject: 'x'.repeat(257) }) }, 400, 'bad_request'],
    ['/admin/accounts/enable', { method: 'POST', body: JSON.stringify({ subject: 'u', pad: 'x'.repeat(5000) }) }, 413, 'body_too_large'],
    ['/admin/accounts?limit=0', {}, 400, 'bad_request'],
    ['/admin/accounts?limit=abc', {}, 400, 'bad_request'],
    ['/admin/accounts?subject=', {}, 400, 'bad_request'],
  ];
  for (const [path, init, status, code] of cases) {
    const answer = await call(path, init);
    assert.deepEqual([answer.status, answer.body['error']], [status, code], `${path} ${init.body?.slice(0, 40) ?? ''}`);
  }
  assert.deepEqual((await call('/admin/accounts/disable', { method: 'POST', body: JSON.stringify({ subject: 'u', reason: 'r' }) })).body, { subject: 'u', disabled: true });
  const disabled = (await call('/admin/accounts?subject=u')).body['disabled'] as { reason: string; by: string; at: number };
  assert.deepEqual([disabled.reason, disabled.by, typeof disabled.at], ['r', 'admin-api', 'number']);
  assert.equal(lines.filter((l) => l['msg'] === 'admin_audit').length >= cases.length, true, 'refusals are audited too');
});

test('admin API: a token file that goes missing refuses every call (503) until it is back', async (t) => {
  const { call, tokenFile } = await setUp(t);
  assert.equal((await call('/admin/security-events')).status, 200);
  unlinkSync(tokenFile);
  assert.deepEqual([(await call('/admin/security-events')).status, (await call('/admin/security-events')).body['error']], [503, 'admin_token_unavailable']);
  writeFileSync(tokenFile, 'rotated-token-0123456789\n');
  assert.equal((await call('/admin/security-events')).status, 401, 'the old token no longer works');
  assert.equal((await call('/admin/security-events', { token: 'rotated-token-0123456789' })).status, 200, 'the rotated one does, without a restart');
});

test('admin API: a client that sends half a body and stalls does not block other calls', async (t) => {
  const { call, port } = await setUp(t);
  const stalled = request({ host: '127.0.0.1', port, method: 'POST', path: '/admin/accounts/enable', headers: { authorization: `Bearer ${TOKEN}`, 'content-length': '100' } });
  stalled.on('error', () => undefined);
  stalled.write('{"subject":');
  t.after(() => { stalled.destroy(); });
  assert.equal((await call('/admin/accounts')).status, 200);
});

test('a missing admin.tokenFile stops the start with an error naming the field', async () => {
  const parsed = parseConfig('listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nadmin: { tokenFile: /nonexistent/gatehouse-admin-token }\nroutes: []\n', 'admin-test.yaml');
  assert.ok(parsed.ok);
  await assert.rejects(startGatehouse({ config: parsed.config, runtimeMetrics: false, logDestination: { write: () => undefined } }), (err: unknown) => err instanceof StartupError && err.message === 'admin-test.yaml: admin.tokenFile: /nonexistent/gatehouse-admin-token: ENOENT');
});

test('admin API, devices: look up, revoke (idempotent), unknown → 404 device_not_found, bad input → 400, a wrong token refused; every call audited', async (t) => {
  const { call, lines, stores } = await setUp(t);
  const device = enrolledDevice({ subject: 'user-9' });
  assert.deepEqual(await stores.devices.put(device), { ok: true });
  const id = device.deviceId;

  const before = await call(`/admin/devices?id=${id}`);
  assert.deepEqual([before.status, before.body], [200, { deviceId: id, subject: 'user-9', integrity: 'strong', appId: 'com.example.superapp', algorithm: device.algorithm, e2ee: true, enrolledAt: '2023-11-14T22:13:20.000Z', revoked: false, revokedAt: null }]);
  assert.doesNotMatch(JSON.stringify(before.body), new RegExp(device.publicJwk.x), 'no key material beyond the id');

  const bad: [string, { method?: string; body?: string }, number, string][] = [
    ['/admin/devices', {}, 400, 'bad_request'],
    ['/admin/devices?id=', {}, 400, 'bad_request'],
    ['/admin/devices?id=a%2Fb', {}, 400, 'bad_request'],
    [`/admin/devices?id=${'x'.repeat(129)}`, {}, 400, 'bad_request'],
    ['/admin/devices?id=unknownDevice', {}, 404, 'device_not_found'],
    ['/admin/devices/revoke', { method: 'POST', body: 'not json' }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: 'null' }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id }) }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ reason: 'stolen' }) }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: 42, reason: 'stolen' }) }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: 'a b', reason: 'stolen' }) }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id, reason: 'x'.repeat(201) }) }, 400, 'bad_request'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id, reason: 'r', pad: 'x'.repeat(5000) }) }, 413, 'body_too_large'],
    ['/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: 'unknownDevice', reason: 'stolen' }) }, 404, 'device_not_found'],
  ];
  for (const [path, init, status, code] of bad) {
    const answer = await call(path, init);
    assert.deepEqual([answer.status, answer.body['error']], [status, code], `${path} ${init.body?.slice(0, 40) ?? ''}`);
  }
  assert.equal((await call('/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id, reason: 'stolen' }), token: 'wrong-token-0123456789' })).status, 401);
  const unchanged = await stores.devices.get(id);
  assert.ok(unchanged.ok);
  assert.equal(unchanged.device?.revokedAt, undefined, 'nothing changed by the refusals');

  const revoked = await call('/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id, reason: 'phone stolen' }) });
  assert.deepEqual([revoked.status, revoked.body['revoked'], revoked.body['revokedAt'], revoked.body['subject']], [200, true, '2027-01-15T08:00:00.000Z', 'user-9']);
  const again = await call('/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: id, reason: 'phone stolen' }) });
  assert.deepEqual([again.status, again.body], [200, revoked.body], 'idempotent: the same answer, the first revokedAt');
  const after = await call(`/admin/devices?id=${id}`);
  assert.deepEqual([after.status, after.body['revoked'], after.body['revokedAt']], [200, true, '2027-01-15T08:00:00.000Z']);

  const audits = lines.filter((l) => l['msg'] === 'admin_audit' && String(l['action']).startsWith('devices.'));
  assert.equal(audits.length, bad.length + 5, 'every call, refused or not');
  assert.ok(audits.some((a) => a['action'] === 'devices.revoke' && a['result'] === 'unauthorized' && a['status'] === 401 && a['level'] === 40));
  assert.ok(audits.some((a) => a['action'] === 'devices.revoke' && a['result'] === 'device_not_found' && a['status'] === 404 && a['device'] === 'unknownDevice' && a['reason'] === 'stolen'), 'a refused revoke names the device it was for');
  const ok = audits.find((a) => a['action'] === 'devices.revoke' && a['result'] === 'ok')!;
  assert.deepEqual([ok['device'], ok['subject'], ok['reason'], ok['level']], [id, 'user-9', 'phone stolen', 30]);
});

test('admin API: a source sending wrong tokens is throttled: 429 too_many_attempts with Retry-After, the right token included, until the window passes', async (t) => {
  let now = 1_800_000_000_000;
  const { call, lines } = await setUp(t, { now: () => now });
  for (let i = 0; i < FAILED_TOKENS_PER_SOURCE; i++) assert.equal((await call('/admin/accounts', { token: `guess-${i}-0123456789abcdef` })).status, 401, `guess ${i}`);
  const throttled = await call('/admin/accounts', { token: 'guess-x-0123456789abcdef' });
  assert.deepEqual([throttled.status, throttled.body['error']], [429, 'too_many_attempts']);
  assert.equal(throttled.headers.get('retry-after'), String(FAILED_TOKEN_WINDOW_MS / 1000));
  const right = await call('/admin/accounts');
  assert.equal(right.status, 429, 'a throttled source learns nothing, not even that it guessed right');
  now += 30_000;
  assert.equal((await call('/admin/accounts')).headers.get('retry-after'), '30', 'the wait shrinks as the window slides');
  now += 30_001;
  assert.equal((await call('/admin/accounts')).status, 200, 'after the window, the right token works again');
  const audits = lines.filter((l) => l['msg'] === 'admin_audit');
  const throttledAudits = audits.filter((a) => a['result'] === 'too_many_attempts' && a['status'] === 429);
  assert.equal(throttledAudits.length, 3, 'the throttled calls are audited');
  assert.ok(throttledAudits.every((a) => /^(?:::ffff:)?127\.0\.0\.1$/.test(String(a['source']))), 'with their source');
});

test('admin API: every action is audited with its subject whatever the outcome: a failed disable, an enable whose window clearing failed', async (t) => {
  const failingWindows: RuleWindows = { add: () => Promise.resolve({ ok: true, count: 0 }), clear: () => Promise.resolve(storeFailure('unavailable', 'test: redis down')) };
  const { call, lines } = await setUp(t, { windows: failingWindows, accounts: { disable: () => Promise.resolve(storeFailure('unavailable', 'test: redis down')) } });
  const disabled = await call('/admin/accounts/disable', { method: 'POST', body: JSON.stringify({ subject: 'user-5', reason: 'fraud' }) });
  assert.deepEqual([disabled.status, disabled.body['error']], [503, 'store_unavailable']);
  const failedDisable = lines.find((l) => l['msg'] === 'admin_audit' && l['action'] === 'accounts.disable')!;
  assert.deepEqual([failedDisable['subject'], failedDisable['reason'], failedDisable['result'], failedDisable['status']], ['user-5', 'fraud', 'store_unavailable', 503]);

  const enabled = await call('/admin/accounts/enable', { method: 'POST', body: JSON.stringify({ subject: 'user-6', reason: 'verified by phone' }) });
  assert.deepEqual([enabled.status, enabled.body['error']], [503, 'store_unavailable']);
  assert.match(String(enabled.body['message']), /the account is enabled, but its rule windows could not be cleared/);
  const audit = lines.find((l) => l['msg'] === 'admin_audit' && l['action'] === 'accounts.enable')!;
  assert.deepEqual(
    [audit['subject'], audit['reason'], audit['enabled'], audit['windows_cleared'], audit['result'], audit['status']],
    ['user-6', 'verified by phone', true, false, 'store_unavailable', 503],
    'the audit says the account was re-enabled, and that its windows were not cleared',
  );
});

test('admin API: every call is counted by action and result, the writes\' ok series from start', async (t) => {
  const { call, registry, stores } = await setUp(t);
  const counted = async (): Promise<Record<string, number>> => {
    const metric = await registry.getSingleMetric('gatehouse_admin_api_calls_total')!.get();
    return Object.fromEntries(metric.values.map((v) => [`${String(v.labels['action'])} ${String(v.labels['result'])}`, v.value]));
  };
  assert.deepEqual(await counted(), { 'accounts.disable ok': 0, 'accounts.enable ok': 0, 'devices.revoke ok': 0 });
  const device = enrolledDevice({ subject: 'user-9' });
  assert.ok((await stores.devices.put(device)).ok);
  assert.equal((await call('/admin/accounts/disable', { method: 'POST', body: JSON.stringify({ subject: 'u', reason: 'fraud' }) })).status, 200);
  assert.equal((await call('/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: device.deviceId, reason: 'stolen' }) })).status, 200);
  assert.equal((await call('/admin/devices/revoke', { method: 'POST', body: JSON.stringify({ deviceId: 'unknown-device', reason: 'stolen' }) })).status, 404);
  assert.equal((await call('/admin/accounts/disable', { method: 'POST', body: '{}', token: 'wrong-token-0123456789' })).status, 401);
  assert.deepEqual(await counted(), {
    'accounts.disable ok': 1, 'accounts.enable ok': 0, 'devices.revoke ok': 1,
    'devices.revoke device_not_found': 1, 'accounts.disable unauthorized': 1,
  });
});
