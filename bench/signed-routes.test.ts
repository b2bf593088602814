// The signed routes `npm run bench` loads, and the generator that loads them: the figures mean
// something only if gatehouse really verifies, decrypts and issues a passport on each stream, if the
// generator sends every stream once and counts a refusal as a failure, and if a replayed stream
// (what h2load would send) is refused.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { GatehouseConfig } from '../src/config/types.js';
import { startGatehouse } from '../src/gatehouse.js';
import { tempDir } from '../test/support/temp-dir.js';
import { skipWithoutRedis, TestRedisServer } from '../test/support/redis.js';
import { startCeilingServer } from './ceiling-server.js';
import { buildScenario, frameMessages, verifyEnvoyStyle, verifyPreFramed } from './extproc-load.js';
import { enroll } from './bench-stores.js';
import { prepareSignedRoutes, SIGNED_ROUTE_KINDS } from './signed-routes.js';
import { readStreamsFile, runUniqueLoad, writeStreamsFile } from './unique-load.js';

const discard = { write: () => undefined };


test('gatehouse on the signed bench routes: each verifies, and the full route decrypts and seals; distinct streams all pass, a replayed one is refused', { skip: skipWithoutRedis() }, async (t) => {
  const dir = tempDir(t, 'signed-routes-test-');
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const routes = await prepareSignedRoutes(dir, redis.url);
  // the bench's timers (150 ms budget, 50 ms Redis commands) are its goals; this test asserts answers,
  // so it runs them with generous ones, as a busy machine needs
  const { config } = routes;
  const redisConfig = config.stores.redis;
  const generous: GatehouseConfig = {
    ...config,
    defaults: { ...config.defaults, budgetMs: 20_000 },
    envoy: { ...config.envoy, messageTimeoutMs: 30_000 },
    stores: redisConfig === undefined ? config.stores : { ...config.stores, redis: { ...redisConfig, commandTimeoutMs: 5_000 } },
  };
  const gatehouse = await startGatehouse({ config: generous, runtimeMetrics: false, logDestination: discard });
  t.after(() => gatehouse.stop(200));
  await enroll(gatehouse.deps.stores.devices, routes.device);

  for (const kind of SIGNED_ROUTE_KINDS) {
    const preFramed = await verifyPreFramed(gatehouse.grpcPort, await routes.scenario(kind), 1);
    assert.equal(preFramed.answerKinds.length, { 'signed GET': 2, 'signed': 3, 'signed + passport': 3, 'signed + e2ee + passport': 4 }[kind], kind);
    await verifyEnvoyStyle(gatehouse.grpcPort, await routes.scenario(kind), 1);
    const result = await runUniqueLoad(gatehouse.grpcPort, await routes.streams(kind, 40), 2, 4);
    assert.deepEqual({ ok: result.ok, failed: result.failed }, { ok: 40, failed: 0 }, `${kind}: ${result.errors.join('; ')}`);
  }

  // the same stream twice: the second is a replay, and the generator reports the refusal with its code
  const [stream] = await routes.streams('signed', 1);
  const replayed = await runUniqueLoad(gatehouse.grpcPort, [stream!, stream!], 1, 1);
  assert.equal(replayed.ok, 1);
  assert.equal(replayed.failed, 1);
  // refused at its headers: the nonce is claimed there, before anything could reach the upstream
  assert.match(replayed.errors[0] ?? '', /^stream 1: answers immediateResponse to 3 messages: 401 signature_replayed$/);
});

test('a route check fails on answers that only look right (the ceiling answers every message empty)', async (t) => {
  const routes = await prepareSignedRoutes(tempDir(t, 'signed-routes-test-'), 'redis://127.0.0.1:1');
  const ceiling = await startCeilingServer(0);
  t.after(() => ceiling.close());
  await assert.rejects(verifyPreFramed(ceiling.port, await routes.scenario('signed + passport'), 1), /no x-passport for the upstream/);
  await assert.rejects(verifyPreFramed(ceiling.port, await routes.scenario('signed + e2ee + passport'), 1), /no x-passport|would not get the plaintext/);
});

test('the streams file keeps each stream whole and in order; a truncated file is refused', (t) => {
  const file = join(tempDir(t, 'signed-routes-test-'), 'streams.bin');
  const streams = [Buffer.from('one'), Buffer.alloc(0), Buffer.from('three')];
  writeStreamsFile(file, streams);
  assert.deepEqual(readStreamsFile(file).map((s) => s.toString()), ['one', '', 'three']);
  writeStreamsFile(file, []);
  assert.deepEqual(readStreamsFile(file), []);
  writeFileSync(file, Buffer.from([0, 0, 0, 9, 1, 2]));
  assert.throws(() => readStreamsFile(file), /truncated stream at byte 0/);
});

test('the generator sends each stream once and counts what the server answered', async (t) => {
  const ceiling = await startCeilingServer(0);
  t.after(() => ceiling.close());
  const stream = frameMessages(buildScenario('with-bodies').messages);
  const result = await runUniqueLoad(ceiling.port, Array.from({ length: 200 }, () => stream), 2, 8);
  assert.equal(result.streams, 200);
  assert.equal(result.ok, 200);
  assert.equal(result.failed, 0);
  assert.ok(result.streamsPerSec > 0 && result.latency.p50Ms > 0 && result.latency.p99Ms >= result.latency.p50Ms);
});
