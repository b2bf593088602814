import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { promtoolCheck, skipWithoutPromtool } from '../../test/support/promtool.js';
import { MemoryChallengeLedger } from '../protocol/signing/challenge-ledger.js';
import { createMemoryStores } from './index.js';
import { keyPart, KeyLayout } from './keys.js';
import { LocalCache } from './local-cache.js';
import { StoreMetrics } from './metrics.js';
import { MemoryNonceStore } from './nonces.js';
import { enrolledDevice } from './test-devices.js';
import type { ChallengeStore } from './types.js';

test('memory nonces: first use once, replay after, forgotten after the ttl', async () => {
  let now = 1_000;
  const nonces = new MemoryNonceStore(10, new StoreMetrics(), () => now);
  assert.deepEqual(await nonces.claim('k', 'n1', 100), { ok: true, firstUse: true });
  assert.deepEqual(await nonces.claim('k', 'n1', 100), { ok: true, firstUse: false });
  assert.deepEqual(await nonces.claim('other', 'n1', 100), { ok: true, firstUse: true }, 'nonces are per key id');
  now += 99;
  assert.deepEqual(await nonces.claim('k', 'n1', 100), { ok: true, firstUse: false });
  now += 1;
  assert.deepEqual(await nonces.claim('k', 'n1', 100), { ok: true, firstUse: true }, 'expired, so new again');
  // (a, b:c) and (a:b, c) are different pairs
  assert.equal((await nonces.claim('a', 'b:c', 100)).ok && (await nonces.claim('a:b', 'c', 100)).ok, true);
  const again = await nonces.claim('a:b', 'c', 100);
  assert.deepEqual(again, { ok: true, firstUse: false });
});

test('memory nonces: full means refused (capacity), never a live nonce forgotten; expiry frees room', async () => {
  let now = 0;
  const nonces = new MemoryNonceStore(3, new StoreMetrics(), () => now);
  for (const [n, ttl] of [['a', 300], ['b', 100], ['c', 200]] as const) assert.deepEqual(await nonces.claim('k', n, ttl), { ok: true, firstUse: true });
  const full = await nonces.claim('k', 'd', 100);
  assert.equal(full.ok, false);
  assert.equal(!full.ok && full.reason, 'capacity');
  assert.deepEqual(await nonces.claim('k', 'b', 100), { ok: true, firstUse: false }, 'a live nonce is still refused when full');
  now = 100; // b expired: one slot
  assert.deepEqual(await nonces.claim('k', 'd', 100), { ok: true, firstUse: true });
  assert.equal((await nonces.claim('k', 'e', 100)).ok, false);
  now = 250; // c (200) and d (200) expired
  assert.equal(nonces.size, 3);
  assert.deepEqual(await nonces.claim('k', 'e', 100), { ok: true, firstUse: true });
  assert.equal(nonces.size, 2);
  assert.deepEqual(await nonces.claim('k', 'a', 100), { ok: true, firstUse: false });
});

test('memory nonces: a ttl that is not 1 ms..1 day is refused as invalid', async () => {
  const nonces = new MemoryNonceStore(10, new StoreMetrics());
  for (const ttl of [0, -1, 1.5, Number.NaN, 86_400_001]) {
    const r = await nonces.claim('k', 'n', ttl);
    assert.equal(!r.ok && r.reason, 'invalid', String(ttl));
  }
});

test('memory stores: challenge single use, devices, accounts, metrics', async () => {
  const registry = new Registry();
  const stores = createMemoryStores(undefined, { registry });
  const ledger: ChallengeStore = new MemoryChallengeLedger(); // the protocol's ledger fits the stores' interface
  assert.deepEqual(await ledger.consume('c', 200, 100), { ok: true });
  assert.deepEqual(await stores.challenges.consume('c1', 200, 100), { ok: true });
  const used = await stores.challenges.consume('c1', 200, 100);
  assert.equal(!used.ok && 'code' in used && used.code, 'challenge_used');

  const device = enrolledDevice();
  assert.deepEqual(await stores.devices.put(device), { ok: true });
  const got = await stores.devices.get(device.deviceId);
  assert.ok(got.ok && got.device);
  assert.equal(got.device.device, device);
  assert.equal(got.device.signingKey.thumbprint, device.deviceId);
  assert.deepEqual(got.device.e2eeKey?.publicKey, Buffer.from(device.e2eePublicKey!));
  const again = await stores.devices.get(device.deviceId);
  assert.ok(again.ok && again.device);
  assert.equal(again.device.e2eeKey, got.device.e2eeKey, 'the same DeviceKey object every time: e2ee caches by it');
  assert.deepEqual(await stores.devices.revoke(device.deviceId, 5), { ok: true, existed: true });
  assert.deepEqual(await stores.devices.put(device), { ok: true });
  const revoked = await stores.devices.get(device.deviceId);
  assert.equal(revoked.ok && revoked.device?.revokedAt, 5, 're-enrolling a revoked key keeps it revoked');
  assert.deepEqual(await stores.devices.revoke('nobody', 5), { ok: true, existed: false });
  assert.deepEqual(await stores.devices.get('nobody'), { ok: true, device: undefined });
  const forged = await stores.devices.put({ ...device, deviceId: 'not-its-thumbprint' });
  assert.equal(!forged.ok && forged.reason, 'invalid');

  assert.deepEqual(await stores.accounts.isDisabled('u'), { ok: true, disabled: undefined });
  assert.deepEqual(await stores.accounts.disable('u', 'fraud', 'ops', 7), { ok: true });
  assert.deepEqual(await stores.accounts.isDisabled('u'), { ok: true, disabled: { reason: 'fraud', by: 'ops', at: 7 } });
  assert.deepEqual(await stores.accounts.list(10), { ok: true, accounts: [{ subject: 'u', reason: 'fraud', by: 'ops', at: 7 }], truncated: false });
  assert.deepEqual(await stores.accounts.list(0), { ok: true, accounts: [], truncated: true });
  assert.deepEqual(await stores.accounts.enable('u'), { ok: true, existed: true });
  assert.deepEqual(await stores.accounts.enable('u'), { ok: true, existed: false });
  assert.deepEqual(stores.status(), { kind: 'memory', state: 'ready' });

  const text = await registry.metrics();
  assert.match(text, /^gatehouse_store_operations_total\{store="challenges",operation="consume",outcome="replayed"\} 1$/m);
  assert.match(text, /^gatehouse_store_operations_total\{store="devices",operation="put",outcome="invalid"\} 1$/m);
});

test('keys: client text cannot move the Cluster hash tag or alias another key', () => {
  const keys = new KeyLayout('gh:');
  assert.equal(keys.nonce('dev-1', 'abc_DEF-123'), 'gh:{dev-1}:n:abc_DEF-123');
  assert.equal(keys.device('dev-1'), 'gh:{dev-1}:device', 'a device and its nonces share a slot');
  for (const hostile of ['a}b', '{x}', 'a:b', '', 'x'.repeat(129), 'é', '~abc']) {
    const part = keyPart(hostile);
    assert.match(part, /^(?:[A-Za-z0-9._-]{1,128}|~[A-Za-z0-9_-]{43})$/, hostile);
    assert.ok(!/[{}:]/.test(part));
  }
  assert.notEqual(keyPart('a}b'), keyPart('a{b'));
});

test('local cache: bounded by size, entries expire after the ttl (kept only for getExpired), oldest evicted first', () => {
  let now = 0;
  const cache = new LocalCache<number>({ maxEntries: 2, ttlMs: 100 }, () => now);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  assert.equal(cache.size, 2);
  assert.equal(cache.get('a'), undefined);
  assert.equal(cache.get('c'), 3);
  now = 99;
  assert.equal(cache.get('b'), 2);
  now = 100;
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.getExpired('b'), 2, 'kept for a re-read to reuse, never answered as current');
  cache.set('d', 4);
  cache.set('e', 5);
  assert.equal(cache.size, 2, 'expired entries count against maxEntries');
  assert.equal(cache.getExpired('b'), undefined);
  const off = new LocalCache<number>({ maxEntries: 0, ttlMs: 100 });
  off.set('a', 1);
  assert.equal(off.get('a'), undefined, 'maxEntries 0 turns the cache off');
});

test('the store metrics pass promtool check metrics', { skip: skipWithoutPromtool() }, async () => {
  const registry = new Registry();
  const metrics = new StoreMetrics(registry);
  metrics.observe('nonces', 'claim', 'first_use', 0.0002);
  metrics.observe('nonces', 'claim', 'unavailable', 0.05);
  metrics.count('devices', 'get', 'cached');
  const text = await registry.metrics();
  assert.match(text, /^gatehouse_store_operation_duration_seconds_bucket\{store="nonces",operation="claim",le="0.05"\} 2$/m);
  const { code, out } = await promtoolCheck(text);
  assert.equal(out.trim(), '', `promtool complained:\n${out}`);
  assert.equal(code, 0);
});

test('gatehouse_store_up: memory stores always answer', async () => {
  const registry = new Registry();
  createMemoryStores(undefined, { registry });
  assert.match(await registry.metrics(), /^gatehouse_store_up\{kind="memory"\} 1$/m);
});
