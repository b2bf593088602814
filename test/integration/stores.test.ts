// The stores in a running gatehouse: made from the config at start, handed to filters through
// FilterDeps, reported in /readyz (without taking readiness away), counted in /metrics, closed at stop.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../support/config.js';
import { startGatehouse, StartupError, type RunningGatehouse } from '../../src/gatehouse.js';
import { startGatehouseProcess } from '../support/process.js';
import { freePort, skipWithoutRedis, TestRedisServer } from '../support/redis.js';

const skip = skipWithoutRedis();

async function start(storesYaml: string): Promise<{ gatehouse: RunningGatehouse; logs: Record<string, unknown>[] }> {
  const parsed = parseConfig(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n${storesYaml}routes: []\n`, 'stores-test.yaml');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const logs: Record<string, unknown>[] = [];
  const gatehouse = await startGatehouse({
    config: parsed.config,
    runtimeMetrics: false,
    logDestination: { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } },
  });
  return { gatehouse, logs };
}

async function readyz(gatehouse: RunningGatehouse): Promise<{ status: number; body: { status: string; stores: { kind: string; mode?: string; state: string; lastError?: string } } }> {
  const response = await fetch(`http://127.0.0.1:${gatehouse.adminPort}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; stores: { kind: string; state: string } } };
}

async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await attempt();
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a Redis-mode gatehouse: stores from config, /readyz reports them, an outage leaves readiness on, stop closes', { skip }, async () => {
  const redis = await TestRedisServer.start();
  try {
    const { gatehouse } = await start(`stores: { kind: redis, keyPrefix: "it:", redis: { url: "${redis.url}" } }\n`);
    let stopped = false;
    try {
      assert.deepEqual((await readyz(gatehouse)).body.stores, { kind: 'redis', mode: 'standalone', state: 'ready' });
      const { stores } = gatehouse.deps;
      assert.deepEqual(await stores.nonces.claim('device-1', 'integration-nonce-1', 60_000), { ok: true, firstUse: true });
      assert.deepEqual(await stores.nonces.claim('device-1', 'integration-nonce-1', 60_000), { ok: true, firstUse: false });
      assert.equal(await redis.command('EXISTS', 'it:{device-1}:n:integration-nonce-1'), ':1\r\n');
      const metrics = await (await fetch(`http://127.0.0.1:${gatehouse.adminPort}/metrics`)).text();
      assert.match(metrics, /^gatehouse_store_operations_total\{store="nonces",operation="claim",outcome="replayed"\} 1$/m);
      assert.match(metrics, /^gatehouse_store_operation_duration_seconds_count\{store="nonces",operation="claim"\} 2$/m);

      await redis.stop();
      const down = await eventually(() => readyz(gatehouse), (r) => r.body.stores.state !== 'ready');
      assert.equal(down.status, 200, 'readiness stays on while Redis is down');
      assert.equal(down.body.status, 'ready');
      assert.ok(down.body.stores.lastError !== undefined);
      const claim = await stores.nonces.claim('device-1', 'integration-nonce-2', 60_000);
      assert.equal(!claim.ok && claim.reason, 'unavailable');

      await redis.startAgain();
      await eventually(() => readyz(gatehouse), (r) => r.body.stores.state === 'ready');
      assert.deepEqual(await stores.nonces.claim('device-1', 'integration-nonce-2', 60_000), { ok: true, firstUse: true });
      await gatehouse.stop(100);
      stopped = true;
      assert.equal(stores.status().state, 'closed');
      // the server sees the connection go (only this probe's own connection stays listed)
      await eventually(() => redis.command('CLIENT', 'LIST'), (list) => list.trim().split('\n').filter((l) => l.includes('id=')).length === 1);
    } finally {
      if (!stopped) await gatehouse.stop(100);
    }
  } finally {
    await redis.close();
  }
});

test('a Redis that is down at start: gatehouse starts, logs it, stays ready, and uses Redis once it is up', { skip }, async () => {
  const port = await freePort();
  const { gatehouse, logs } = await start(`stores: { kind: redis, redis: { host: 127.0.0.1, port: ${port}, connectTimeoutMs: 300 } }\n`);
  const redis = await TestRedisServer.startOn(port);
  try {
    assert.ok(logs.some((l) => l['level'] === 'error' && /^redis unreachable at start \(.*ECONNREFUSED/.test(String(l['msg']))), JSON.stringify(logs));
    assert.equal((await readyz(gatehouse)).status, 200);
    await eventually(() => gatehouse.deps.stores.nonces.claim('d', 'late-redis-nonce', 60_000), (r) => r.ok);
    assert.equal((await readyz(gatehouse)).body.stores.state, 'ready');
  } finally {
    await gatehouse.stop(100);
    await redis.close();
  }
});

test('a missing Redis password variable stops the start with a StartupError naming the field', async () => {
  delete process.env['GH_TEST_MISSING_REDIS_PASSWORD'];
  await assert.rejects(
    start('stores: { kind: redis, redis: { host: 127.0.0.1, passwordEnv: GH_TEST_MISSING_REDIS_PASSWORD } }\n'),
    (err: unknown) => err instanceof StartupError && err.message === 'stores.redis.passwordEnv: the environment variable GH_TEST_MISSING_REDIS_PASSWORD is not set',
  );
});

test('memory stores outside the embedded default warn loudly at start; /readyz reports them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-stores-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, 'stores: { kind: memory }\nroutes: []\n');
  const gh = await startGatehouseProcess({ GATEHOUSE_CONFIG: file });
  t.after(() => { gh.child.kill('SIGKILL'); });
  assert.match(gh.stderr(), /IN-MEMORY STORES/);
  assert.ok(gh.lines.some((l) => l['level'] === 'warn' && String(l['msg']).startsWith('stores.kind is memory')));
  const ready = await fetch(`http://127.0.0.1:${gh.adminPort}/readyz`);
  assert.deepEqual(((await ready.json()) as { stores: unknown }).stores, { kind: 'memory', state: 'ready' });
  // the embedded default has its own warning, which already says "in-memory stores"
  const dev = await startGatehouseProcess({ GATEHOUSE_CONFIG: '' });
  t.after(() => { dev.child.kill('SIGKILL'); });
  assert.doesNotMatch(dev.stderr(), /IN-MEMORY STORES/);
});
