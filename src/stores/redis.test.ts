// The Redis stores against a real redis-server (test/support/redis.ts), including an outage, a frozen
// server and a one-node Cluster.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import type { RedisConfig, StoresConfig } from '../config/types.js';
import { DEFAULTS } from '../config/defaults.js';
import { makePkiWithSan } from '../../test/support/pki.js';
import { freePort, skipWithoutRedis, TestRedisServer } from '../../test/support/redis.js';
import { checkRedisRequirements, openStores } from './index.js';
import { KeyLayout } from './keys.js';
import { StoreMetrics } from './metrics.js';
import { RedisNonceStore } from './nonces.js';
import { createRedis, RedisConnection } from './redis.js';
import { serializeDevice } from './devices.js';
import { enrolledDevice } from './test-devices.js';
import type { NonceClaim } from './types.js';

const skip = skipWithoutRedis();

/**
 * The command timeout of tests that expect answers: a redis-server sharing a busy machine may take
 * longer than the 50 ms default (a test's verdict must not depend on how busy the machine is).
 */
const GENEROUS_COMMAND_TIMEOUT_MS = 2_000;
/** the same for connecting where a test expects to connect: a Cluster start also checks each master's identity */
const GENEROUS_CONNECT_TIMEOUT_MS = 20_000;

function redisConfig(port: number, overrides: Partial<RedisConfig> = {}): RedisConfig {
  return { mode: 'standalone', host: '127.0.0.1', port, db: 0, commandTimeoutMs: GENEROUS_COMMAND_TIMEOUT_MS, connectTimeoutMs: 500, ...overrides } as RedisConfig;
}

function storesConfig(redis: RedisConfig, cacheTtlMs = 5_000): StoresConfig {
  const cache = { maxEntries: 100, ttlMs: cacheTtlMs };
  return { kind: 'redis', keyPrefix: 'test:', maxMemoryNonces: 10, deviceCache: cache, accountCache: cache, redis };
}

/** a store on its own ioredis client, as a second gatehouse process would have */
async function nonceStoreOn(server: TestRedisServer, commandTimeoutMs = GENEROUS_COMMAND_TIMEOUT_MS): Promise<{ store: RedisNonceStore; connection: RedisConnection }> {
  const connection = new RedisConnection(createRedis(redisConfig(server.port, { commandTimeoutMs })), 'standalone', new StoreMetrics(), 500, commandTimeoutMs);
  assert.equal(await connection.connect(), undefined);
  return { store: new RedisNonceStore(connection, new KeyLayout('test:')), connection };
}

/** calls `attempt` until `done` says so (bounded by the test timeout, not by a timed assertion) */
async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await attempt();
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const unavailable = (r: NonceClaim): boolean => !r.ok && r.reason === 'unavailable';

let server: TestRedisServer;
before(async () => {
  if (skip === false) server = await TestRedisServer.start();
});
after(async () => {
  await server?.close();
});

test('nonces: 200 concurrent claims of 50 nonces from two clients give exactly 50 first uses', { skip }, async () => {
  const a = await nonceStoreOn(server);
  const b = await nonceStoreOn(server);
  try {
    const claims: Promise<NonceClaim>[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 50; i++) claims.push((round % 2 === 0 ? a : b).store.claim('device-1', `nonce-${i}-xxxxxxxxxxxx`, 60_000));
    }
    const results = await Promise.all(claims);
    assert.ok(results.every((r) => r.ok), JSON.stringify(results.find((r) => !r.ok)));
    assert.equal(results.filter((r) => r.ok && r.firstUse).length, 50);
    const firstOf = new Set(results.flatMap((r, i) => (r.ok && r.firstUse ? [i % 50] : [])));
    assert.equal(firstOf.size, 50, 'each nonce was first exactly once');
    assert.match(await server.command('PTTL', 'test:{device-1}:n:nonce-7-xxxxxxxxxxxx'), /^:\d+\r\n$/);
  } finally {
    await a.connection.close();
    await b.connection.close();
  }
});

test('nonces: claims made in the same tick reach Redis in one socket write (a write syscall per claim cost ~37 µs under load)', { skip }, async () => {
  const { store, connection } = await nonceStoreOn(server);
  try {
    const socket = (connection.client as Redis).stream;
    let writes = 0;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => { writes++; return write(...args); }) as typeof socket.write;
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => store.claim('device-pipelined', `nonce-${i}-xxxxxxxxxxxx`, 60_000)));
    assert.ok(results.every((r) => r.ok && r.firstUse), JSON.stringify(results.find((r) => !r.ok || !r.firstUse)));
    assert.equal(writes, 1, 'one write for the 32 claims');
  } finally {
    await connection.close();
  }
});

test('a busy event loop is not a slow Redis: an answer waiting on the socket when the deadline passes is read, not refused', { skip }, async () => {
  const { store, connection } = await nonceStoreOn(server, DEFAULTS.commandTimeoutMs);
  try {
    const claim = store.claim('device-busy', 'nonce-busy-xxxxxxxxxxxx', 60_000);
    // this runs in the check phase after ioredis's auto-pipeline has written the claim
    await new Promise((resolve) => setImmediate(resolve));
    // gatehouse saturated: the loop stays busy for longer than the timeout while Redis answers at once
    const until = performance.now() + 3 * DEFAULTS.commandTimeoutMs;
    while (performance.now() < until) { /* the streams queued ahead of the answer */ }
    assert.deepEqual(await claim, { ok: true, firstUse: true });
  } finally {
    await connection.close();
  }
});

test('devices: a record re-read after its cache expired keeps its parsed keys while their bytes are the same', { skip }, async () => {
  let now = 2_000_000;
  const clock = () => now;
  const one = await openStores(storesConfig(redisConfig(server.port), 1_000), { now: clock });
  const two = await openStores(storesConfig(redisConfig(server.port), 1_000), { now: clock });
  try {
    const device = enrolledDevice();
    assert.deepEqual(await one.stores.devices.put(device), { ok: true });
    const first = await one.stores.devices.get(device.deviceId);
    now += 1_001; // past the cache TTL: the record is read from Redis again
    const again = await one.stores.devices.get(device.deviceId);
    assert.ok(first.ok && first.device !== undefined && again.ok && again.device !== undefined);
    assert.notEqual(again.device, first.device, 'read again');
    assert.equal(again.device.e2eeKey, first.device.e2eeKey, 'the same DeviceKey: e2ee keeps its static DH for it');
    assert.equal(again.device.signingKey, first.device.signingKey);

    // re-enrolled through another replica with a new e2ee key: parsed anew once the cache expires
    const rekeyed = enrolledDevice({ deviceId: device.deviceId, publicJwk: device.publicJwk, algorithm: device.algorithm });
    assert.deepEqual(await two.stores.devices.put(rekeyed), { ok: true });
    now += 1_001;
    const after = await one.stores.devices.get(device.deviceId);
    assert.ok(after.ok && after.device?.e2eeKey !== undefined && again.device.e2eeKey !== undefined);
    assert.notEqual(after.device.e2eeKey, again.device.e2eeKey);
    assert.deepEqual(new Uint8Array(after.device.e2eeKey.publicKey), rekeyed.e2eePublicKey);

    // a record whose signing key no longer matches its id is corrupt, whatever was parsed before
    const other = enrolledDevice();
    await server.command('HSET', new KeyLayout('test:').device(device.deviceId), 'record', serializeDevice({ ...rekeyed, publicJwk: other.publicJwk }));
    now += 1_001;
    const corrupt = await one.stores.devices.get(device.deviceId);
    assert.equal(!corrupt.ok && corrupt.reason, 'corrupt');
  } finally {
    await one.stores.close();
    await two.stores.close();
  }
});

test('nonces: a claim is forgotten after its ttl', { skip }, async () => {
  const { store, connection } = await nonceStoreOn(server);
  try {
    assert.deepEqual(await store.claim('device-2', 'short-lived-nonce-1', 30), { ok: true, firstUse: true });
    assert.deepEqual(await store.claim('device-2', 'short-lived-nonce-1', 30), { ok: true, firstUse: false });
    await eventually(() => store.claim('device-2', 'short-lived-nonce-1', 30), (r) => r.ok && r.firstUse);
    const bad = await store.claim('device-2', 'n', 0);
    assert.equal(!bad.ok && bad.reason, 'invalid');
  } finally {
    await connection.close();
  }
});

test('challenges, devices and accounts through Redis; caches across two replicas', { skip }, async () => {
  let now = 1_000_000;
  const clock = () => now;
  const registry = new Registry();
  const one = await openStores(storesConfig(redisConfig(server.port), 1_000), { now: clock, registry });
  const two = await openStores(storesConfig(redisConfig(server.port), 1_000), { now: clock });
  assert.equal(one.connectError, undefined);
  const [a, b] = [one.stores, two.stores];
  try {
    assert.deepEqual(a.status(), { kind: 'redis', mode: 'standalone', state: 'ready' });
    // challenge ledger: single use across replicas, Redis forgets it at its expiry (EXAT)
    const nowSec = Math.floor(Date.now() / 1000);
    assert.deepEqual(await a.challenges.consume('chl-1', nowSec + 300, nowSec), { ok: true });
    const used = await b.challenges.consume('chl-1', nowSec + 300, nowSec);
    assert.equal(!used.ok && 'code' in used && used.code, 'challenge_used');
    assert.match(await server.command('EXPIRETIME', 'test:{chl-1}:challenge'), new RegExp(`^:${nowSec + 300}\\r\\n$`));
    const late = await a.challenges.consume('chl-2', nowSec, nowSec);
    assert.equal(!late.ok && 'code' in late && late.code, 'challenge_expired');
    const far = await a.challenges.consume('chl-3', nowSec + 361, nowSec);
    assert.equal(!far.ok && 'code' in far && far.code, 'challenge_invalid');

    // devices: parsed once, cached (same objects), revocation at once here and within the ttl there
    const device = enrolledDevice();
    assert.deepEqual(await a.devices.put(device), { ok: true });
    const first = await b.devices.get(device.deviceId);
    assert.ok(first.ok && first.device);
    assert.deepEqual(first.device.device, device);
    assert.equal(first.device.signingKey.thumbprint, device.deviceId);
    const cached = await b.devices.get(device.deviceId);
    assert.ok(cached.ok && cached.device);
    assert.equal(cached.device.e2eeKey, first.device.e2eeKey, 'the same DeviceKey object: e2ee static-DH cache hits');
    assert.deepEqual(await a.devices.revoke(device.deviceId, now), { ok: true, existed: true });
    const stale = await b.devices.get(device.deviceId);
    assert.equal(stale.ok && stale.device?.revokedAt, undefined, 'replica two still has its cached copy');
    now += 1_000;
    const fresh = await b.devices.get(device.deviceId);
    assert.equal(fresh.ok && fresh.device?.revokedAt, now - 1_000, 'and sees the revocation once the ttl passed');
    assert.deepEqual(await a.devices.put(device), { ok: true });
    const still = await a.devices.get(device.deviceId);
    assert.equal(still.ok && still.device?.revokedAt, now - 1_000, 're-enrolling the revoked key keeps it revoked');
    assert.deepEqual(await a.devices.revoke(device.deviceId, now), { ok: true, existed: true });
    const again = await a.devices.get(device.deviceId);
    assert.equal(again.ok && again.device?.revokedAt, now - 1_000, 'revoking again keeps the first revokedAt (idempotent)');
    assert.deepEqual(await a.devices.revoke('unknown-device', now), { ok: true, existed: false });
    assert.deepEqual(await a.devices.get('unknown-device'), { ok: true, device: undefined });
    assert.equal(await server.command('EXISTS', 'test:{unknown-device}:device'), ':0\r\n', 'revoking an unknown device creates nothing');
    const noE2ee = enrolledDevice({}, false);
    assert.deepEqual(await a.devices.put(noE2ee), { ok: true });
    const plain = await b.devices.get(noE2ee.deviceId);
    assert.ok(plain.ok && plain.device && plain.device.e2eeKey === undefined);
    await server.command('HSET', `test:{${noE2ee.deviceId}}:device`, 'record', '{"deviceId":');
    now += 1_000;
    const corrupt = await b.devices.get(noE2ee.deviceId);
    assert.equal(!corrupt.ok && corrupt.reason, 'corrupt');

    // accounts: disabled here at once, there within the ttl (enabled answers are cached too)
    assert.deepEqual(await b.accounts.isDisabled('user-9'), { ok: true, disabled: undefined });
    assert.deepEqual(await a.accounts.disable('user-9', 'fraud', 'fds', now), { ok: true });
    assert.deepEqual(await a.accounts.isDisabled('user-9'), { ok: true, disabled: { reason: 'fraud', by: 'fds', at: now } });
    assert.deepEqual(await b.accounts.isDisabled('user-9'), { ok: true, disabled: undefined }, 'cached enabled answer');
    now += 1_000;
    assert.deepEqual(await b.accounts.isDisabled('user-9'), { ok: true, disabled: { reason: 'fraud', by: 'fds', at: now - 1_000 } });
    assert.deepEqual(await b.accounts.enable('user-9'), { ok: true, existed: true });
    assert.deepEqual(await b.accounts.isDisabled('user-9'), { ok: true, disabled: undefined });

    // list: the subjects as written, a hashed key's too (the record keeps the subject), bounded
    const odd = 'user {odd}:name';
    assert.deepEqual(await a.accounts.disable(odd, 'odd', 'ops', now), { ok: true });
    assert.deepEqual(await a.accounts.disable('user-10', 'fraud', 'fds', now), { ok: true });
    const listed = await b.accounts.list(10);
    assert.ok(listed.ok);
    assert.deepEqual([...listed.accounts].sort((x, y) => x.subject.localeCompare(y.subject)), [
      { subject: 'user {odd}:name', reason: 'odd', by: 'ops', at: now },
      { subject: 'user-10', reason: 'fraud', by: 'fds', at: now },
    ]);
    assert.equal(listed.truncated, false);
    const one = await b.accounts.list(1);
    assert.ok(one.ok && one.accounts.length === 1 && one.truncated);
    await a.accounts.enable(odd);
    await a.accounts.enable('user-10');

    const text = await registry.metrics();
    assert.match(text, /^gatehouse_store_operations_total\{store="challenges",operation="consume",outcome="first_use"\} 1$/m);
    assert.match(text, /^gatehouse_store_operation_duration_seconds_count\{store="devices",operation="put"\} 3$/m);
  } finally {
    await a.close();
    await b.close();
  }
  assert.deepEqual(a.status(), { kind: 'redis', mode: 'standalone', state: 'closed' });
  const closed = await a.nonces.claim('k', 'after-close-nonce', 1000);
  assert.equal(!closed.ok && closed.reason, 'unavailable');
});

test('outage: Redis stopped answers unavailable (no throw, no hang), frozen times out, and both recover', { skip }, async () => {
  const outage = await TestRedisServer.start();
  const { stores } = await openStores(storesConfig(redisConfig(outage.port)));
  try {
    assert.deepEqual(await stores.nonces.claim('k', 'before-outage-1', 60_000), { ok: true, firstUse: true });
    await outage.stop();
    const down = await eventually(() => stores.nonces.claim('k', 'during-outage-1', 60_000), unavailable);
    assert.ok(!down.ok && down.detail.startsWith('redis claim: '), JSON.stringify(down));

    const lookups = await Promise.all([stores.devices.get('d'), stores.accounts.isDisabled('u'), stores.challenges.consume('c', 2e9, 2e9 - 10)]);
    assert.ok(lookups.every((r) => !r.ok && 'reason' in r && r.reason === 'unavailable'), JSON.stringify(lookups));
    const status = await eventually(() => Promise.resolve(stores.status()), (s) => s.state !== 'ready');
    assert.ok(status.lastError !== undefined, JSON.stringify(status));

    await outage.startAgain();
    await eventually(() => stores.nonces.claim('k', 'after-restart-1', 60_000), (r) => r.ok);
    assert.deepEqual(stores.status(), { kind: 'redis', mode: 'standalone', state: 'ready' });

    outage.freeze();
    const frozen = await stores.nonces.claim('k', 'while-frozen-1', 60_000);
    assert.ok(!frozen.ok && frozen.reason === 'unavailable' && /timed out/i.test(frozen.detail), JSON.stringify(frozen));
    outage.thaw();
    await eventually(() => stores.nonces.claim('k', 'after-thaw-1', 60_000), (r) => r.ok);
  } finally {
    outage.thaw();
    await stores.close();
    await outage.close();
  }
});

test('a Redis that restarts without persistence forgot its nonces: a signature made before is refused as forgotten until it expires, one made after is claimed; a replica started later learns it', { skip }, async () => {
  const volatile = await TestRedisServer.start();
  const registry = new Registry();
  const { stores } = await openStores(storesConfig(redisConfig(volatile.port)), { registry });
  try {
    const signedBefore = Date.now() - 1_000;
    assert.deepEqual(await stores.nonces.claim('k', 'claimed-before-loss', 60_000, signedBefore), { ok: true, firstUse: true });
    assert.deepEqual(await stores.nonces.claim('k', 'claimed-before-loss', 60_000, signedBefore), { ok: true, firstUse: false }, 'a replay while Redis remembers');
    await volatile.stop();
    await volatile.startAgain(); // --save "" --appendonly no: an empty Redis
    const replayed = await eventually(() => stores.nonces.claim('k', 'claimed-before-loss', 60_000, signedBefore), (r) => r.ok || r.reason !== 'unavailable');
    assert.ok(!replayed.ok && replayed.reason === 'forgotten', `the replay of a signature older than the loss is not a first use: ${JSON.stringify(replayed)}`);
    const signedAfter = Date.now() + 1;
    assert.deepEqual(await stores.nonces.claim('k', 'signed-after-loss', 60_000, signedAfter), { ok: true, firstUse: true }, 'a signature made after the loss is claimed as usual');
    assert.match(await registry.metrics(), /^gatehouse_store_operations_total\{store="nonces",operation="identity",outcome="changed"\} 1$/m);
    assert.match(await registry.metrics(), /^gatehouse_store_operations_total\{store="nonces",operation="claim",outcome="forgotten"\} 1$/m);
    // a replica that starts now has not seen the loss itself: it learns it from Redis
    const later = await openStores(storesConfig(redisConfig(volatile.port)));
    try {
      const there = await later.stores.nonces.claim('k', 'another-old-one', 60_000, signedBefore);
      assert.ok(!there.ok && there.reason === 'forgotten', JSON.stringify(there));
    } finally {
      await later.stores.close();
    }
  } finally {
    await stores.close();
    await volatile.close();
  }
});

test('the Redis requirements: an evicting policy and no persistence are each named; a Redis that meets them gets no warning', { skip }, async () => {
  const checked = await TestRedisServer.start();
  const opened = await openStores(storesConfig(redisConfig(checked.port)));
  try {
    const settings = async (): Promise<string[]> => (await checkRedisRequirements(opened.redis!.connection, 2_000)).map((r) => `${r.setting}: ${r.found}`);
    assert.deepEqual(await settings(), ['appendonly/save: appendonly no, save ""'], 'the test server runs without persistence');
    await checked.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    assert.deepEqual(await settings(), ['maxmemory-policy: allkeys-lru', 'appendonly/save: appendonly no, save ""']);
    await checked.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await checked.command('CONFIG', 'SET', 'appendonly', 'yes');
    assert.deepEqual(await settings(), []);
  } finally {
    await opened.stores.close();
    await checked.close();
  }
});

test('a disable and a revocation on a master with a replica are confirmed only once the replica has them; a replica that does not answer makes them fail, not lie', { skip }, async () => {
  const master = await TestRedisServer.start();
  const replica = await TestRedisServer.start();
  const opened = await openStores(storesConfig(redisConfig(master.port)));
  try {
    await replica.command('REPLICAOF', '127.0.0.1', String(master.port));
    await eventually(() => master.command('INFO', 'replication'), (info) => /connected_slaves:1/.test(info) && /state=online/.test(info));
    const { accounts, devices } = opened.stores;
    assert.deepEqual(await accounts.disable('user-durable', 'fraud', 'ops', 1), { ok: true });
    assert.match(await replica.command('EXISTS', 'test:{user-durable}:disabled'), /^:1/, 'the replica has it when the disable is confirmed');
    replica.freeze(); // connected, silent: WAIT gets no acknowledgement
    const lost = await accounts.disable('user-unconfirmed', 'fraud', 'ops', 2);
    assert.ok(!lost.ok && lost.reason === 'unavailable' && /no replica confirmed/.test(lost.detail), JSON.stringify(lost));
    const device = enrolledDevice();
    assert.deepEqual(await devices.put(device), { ok: true });
    const revoked = await devices.revoke(device.deviceId, 3);
    assert.ok(!revoked.ok && /no replica confirmed/.test(revoked.detail), JSON.stringify(revoked));
  } finally {
    replica.thaw();
    await opened.stores.close();
    await replica.close();
    await master.close();
  }
});

test('a Redis that is down at start: the stores open, answer unavailable, and work once it is up; gatehouse_store_up says which', { skip }, async () => {
  const port = await freePort();
  const registry = new Registry();
  const storeUp = async (): Promise<string> => /^gatehouse_store_up\{kind="redis"\} (\d)$/m.exec(await registry.metrics())?.[1] ?? 'absent';
  const opened = await openStores(storesConfig(redisConfig(port)), { registry });
  assert.equal(await storeUp(), '0', 'down at start');
  const late = await TestRedisServer.startOn(port);
  try {
    assert.notEqual(opened.connectError, undefined);
    await eventually(() => opened.stores.nonces.claim('k', 'late-start-nonce-1', 60_000), (r) => r.ok);
    assert.equal(await storeUp(), '1', 'up once it answers');
  } finally {
    await opened.stores.close();
    await late.close();
  }
});

test('cluster: a one-node Redis Cluster takes the hash-tagged keys (claims, device revoke script)', { skip }, async () => {
  const cluster = await TestRedisServer.start({ cluster: true });
  const config = storesConfig({ mode: 'cluster', nodes: [{ host: '127.0.0.1', port: cluster.port }], commandTimeoutMs: GENEROUS_COMMAND_TIMEOUT_MS, connectTimeoutMs: GENEROUS_CONNECT_TIMEOUT_MS });
  const opened = await openStores(config);
  const { stores } = opened;
  try {
    assert.equal(opened.connectError, undefined);
    assert.equal(stores.status().mode, 'cluster');
    const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => stores.nonces.claim('device-c', `cluster-nonce-${i % 10}`, 60_000)));
    assert.equal(claims.filter((r) => r.ok && r.firstUse).length, 10, JSON.stringify(claims.find((r) => !r.ok)));
    const device = enrolledDevice();
    assert.deepEqual(await stores.devices.put(device), { ok: true });
    assert.deepEqual(await stores.devices.revoke(device.deviceId, 1), { ok: true, existed: true });
    assert.match(await cluster.command('CLUSTER', 'KEYSLOT', `test:{${device.deviceId}}:device`), /^:\d+\r\n$/);
    assert.equal(await cluster.command('CLUSTER', 'KEYSLOT', `test:{${device.deviceId}}:device`), await cluster.command('CLUSTER', 'KEYSLOT', `test:{${device.deviceId}}:n:x`));
    // listing scans every master
    assert.deepEqual(await stores.accounts.disable('user-c', 'fraud', 'fds', 5), { ok: true });
    assert.deepEqual(await stores.accounts.list(10), { ok: true, accounts: [{ subject: 'user-c', reason: 'fraud', by: 'fds', at: 5 }], truncated: false });
  } finally {
    await stores.close();
    await cluster.close();
  }
});

test('sentinel: the stores find the master through a Sentinel', { skip }, async () => {
  const sentinel = await TestRedisServer.start({ sentinelOf: { port: server.port, name: 'gatehouse-test' } });
  const config = storesConfig({ mode: 'sentinel', sentinels: [{ host: '127.0.0.1', port: sentinel.port }], masterName: 'gatehouse-test', db: 0, commandTimeoutMs: GENEROUS_COMMAND_TIMEOUT_MS, connectTimeoutMs: GENEROUS_CONNECT_TIMEOUT_MS });
  const opened = await openStores(config);
  try {
    assert.equal(opened.connectError, undefined);
    assert.deepEqual(opened.stores.status(), { kind: 'redis', mode: 'sentinel', state: 'ready' });
    assert.deepEqual(await opened.stores.nonces.claim('device-s', 'sentinel-nonce-1', 60_000), { ok: true, firstUse: true });
    assert.equal(await server.command('EXISTS', 'test:{device-s}:n:sentinel-nonce-1'), ':1\r\n', 'the key landed on the master');
  } finally {
    await opened.stores.close();
    await sentinel.close();
  }
});

test('TLS and a password from a file: the stores verify the server against the configured CA', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-tls-'));
  makePkiWithSan(dir);
  writeFileSync(join(dir, 'password'), 's3cret-for-tests\n');
  const secure = await TestRedisServer.start({ tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') }, password: 's3cret-for-tests' });
  const tlsConfig = (caFile: string) => redisConfig(secure.port, { password: { file: join(dir, 'password') }, tls: { caFile, serverName: 'localhost' } });
  const opened = await openStores(storesConfig(tlsConfig(join(dir, 'ca.crt'))));
  try {
    assert.equal(opened.connectError, undefined);
    assert.deepEqual(await opened.stores.nonces.claim('device-t', 'tls-nonce-1', 60_000), { ok: true, firstUse: true });
    // a server certificate from another CA is refused: the stores answer unavailable
    const otherCa = join(dir, 'other');
    mkdirSync(otherCa);
    makePkiWithSan(otherCa);
    const wrong = await openStores(storesConfig(tlsConfig(join(otherCa, 'ca.crt'))));
    try {
      assert.notEqual(wrong.connectError, undefined);
      const claim = await wrong.stores.nonces.claim('device-t', 'tls-nonce-2', 60_000);
      assert.equal(!claim.ok && claim.reason, 'unavailable');
    } finally {
      await wrong.stores.close();
    }
  } finally {
    await opened.stores.close();
    await secure.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
