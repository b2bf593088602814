// The `stores:` section: every shape the docs show parses into StoresConfig, and every mistake is an
// error naming file, line and field.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { parseConfig } from '../../test/support/config.js';
import { checkFiles } from '../config/load.js';
import type { StoresConfig } from '../config/types.js';
import { createRedis, RedisConfigError } from './redis.js';

function stores(yaml: string, file = 'gatehouse.yaml'): StoresConfig {
  const result = parseConfig(yaml, file);
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  return JSON.parse(JSON.stringify(result.config.stores)) as StoresConfig;
}

function errors(yaml: string): string[] {
  const result = parseConfig(yaml, 'c.yaml');
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.errors.map((e) => e.format());
}

const TIMEOUTS = { commandTimeoutMs: 50, connectTimeoutMs: 1000 };

test('stores: memory by default, and each Redis mode in the shape the stores read', () => {
  assert.equal(stores('routes: []\n').kind, 'memory');
  assert.deepEqual(stores('stores: { kind: redis, redis: { url: "rediss://app@redis.example:6380/2" } }\n').redis, {
    mode: 'standalone', host: 'redis.example', port: 6380, db: 2, username: 'app', tls: {}, ...TIMEOUTS,
  });
  assert.deepEqual(stores('stores: { kind: redis, redis: { host: redis, passwordEnv: REDIS_PASSWORD, commandTimeoutMs: 20 } }\n').redis, {
    mode: 'standalone', host: 'redis', port: 6379, db: 0, password: { env: 'REDIS_PASSWORD' }, ...TIMEOUTS, commandTimeoutMs: 20,
  });
  assert.deepEqual(stores('stores:\n  kind: redis\n  redis:\n    mode: sentinel\n    sentinels: [s1, "s2:5000"]\n    masterName: mymaster\n    passwordFile: secrets/redis\n', '/etc/gh/c.yaml').redis, {
    mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 5000 }], masterName: 'mymaster', db: 0, password: { file: '/etc/gh/secrets/redis' }, ...TIMEOUTS,
  });
  const cluster = stores('stores:\n  kind: redis\n  keyPrefix: "pay:"\n  deviceCache: { ttlMs: 1000 }\n  redis: { mode: cluster, nodes: ["10.0.0.1:7000", "[::1]"], tls: { caFile: ca.pem, serverName: redis.internal } }\n', '/etc/gh/c.yaml');
  assert.equal(cluster.keyPrefix, 'pay:');
  assert.deepEqual(cluster.deviceCache, { maxEntries: 10_000, ttlMs: 1000 });
  assert.deepEqual(cluster.redis, {
    mode: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 6379 }], tls: { caFile: '/etc/gh/ca.pem', serverName: 'redis.internal' }, ...TIMEOUTS,
  });
});

test('stores: mistakes are errors with file, line and field', () => {
  assert.deepEqual(errors('stores:\n  kind: redis\n'), ['c.yaml:1: stores.redis: kind redis needs a redis section (mode, url or host, ...)']);
  assert.deepEqual(errors('stores:\n  kind: memory\n  redis: { host: r }\n'), ['c.yaml:3: stores.redis: is only read with kind: redis (this is kind: memory)']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    url: "redis://:hunter2@r:6379"\n'), ['c.yaml:4: stores.redis.url: must not carry a password (it would sit in the config file): use passwordFile or passwordEnv']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    mode: sentinel\n    sentinels: [s1]\n'), ['c.yaml:3: stores.redis: mode sentinel needs masterName']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    mode: cluster\n    nodes: [a]\n    host: b\n'), ['c.yaml:6: stores.redis.host: is only read with mode: standalone (this is mode: cluster)']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    url: "redis://r"\n    db: 3\n'), ['c.yaml:5: stores.redis.db: must not be set with url (the URL already says it)']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    host: r\n    passwordEnv: A\n    passwordFile: b\n'), ['c.yaml:6: stores.redis.passwordFile: set passwordEnv or passwordFile, not both']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    host: r\n    commandTimeoutMs: 0\n'), ['c.yaml:5: stores.redis.commandTimeoutMs: must be at least 1, got number 0']);
  assert.deepEqual(errors('stores:\n  keyPrefix: "a{b}"\n'), ['c.yaml:2: stores.keyPrefix: must be at most 64 characters of A-Z a-z 0-9 : . _ - (no braces: they would change the Cluster hash tag), got "a{b}"']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis:\n    mode: cluster\n    nodes: ["a:99999"]\n'), ['c.yaml:5: stores.redis.nodes[0]: must be host or host:port (port default 6379) (e.g. 0.0.0.0:9001 or [::]:9001): the port is above 65535, got "a:99999"']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis: { url: "http://r" }\n'), ['c.yaml:3: stores.redis.url: must be a redis:// or rediss:// URL, got "http://r"']);
  assert.deepEqual(errors('stores:\n  kind: redis\n  redis: { host: r, pasword: x }\n'), ['c.yaml:3: stores.redis.pasword: unknown key; allowed here: mode, url, host, port, db, sentinels, masterName, nodes, username, passwordEnv, passwordFile, tls, commandTimeoutMs, connectTimeoutMs']);
});

test('stores: an unreadable password file is a load error; a missing password variable a start error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-stores-'));
  try {
    const file = join(dir, 'c.yaml');
    const parsed = parseConfig('stores: { kind: redis, redis: { host: r, passwordFile: nope } }\n', file);
    assert.ok(parsed.ok);
    assert.deepEqual(checkFiles(parsed.config).map((e) => e.format()), [`${file}: stores.redis.passwordFile: cannot read ${JSON.stringify(join(dir, 'nope'))}: ENOENT`]);
    writeFileSync(join(dir, 'nope'), 'pw\n');
    assert.deepEqual(checkFiles(parsed.config), []);
    const redis = parsed.config.stores.redis!;
    const client = createRedis(redis, {});
    assert.ok(client instanceof Redis);
    assert.equal(client.options.password, 'pw', 'the trailing newline of the file is not part of the password');
    client.disconnect();
    const fromEnv = parseConfig('stores: { kind: redis, redis: { host: r, passwordEnv: GH_REDIS_PW } }\n', file);
    assert.ok(fromEnv.ok);
    assert.throws(() => createRedis(fromEnv.config.stores.redis!, {}), (err: unknown) => err instanceof RedisConfigError && err.message === 'stores.redis.passwordEnv: the environment variable GH_REDIS_PW is not set');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
