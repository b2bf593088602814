import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { HeaderMap } from '../pipeline/headers.js';
import type { ConfigError } from './errors.js';
import { compileRouteTable, loadConfigFrom } from '../../test/support/config.js';
import { FILTER_REGISTRY } from '../filters/registry.js';
import { ConfigWatcher, type ReloadInfo } from './reload.js';
import type { RouteTable } from './route-table.js';
import { createFilterDeps } from '../filters/deps.js';
import { splitPath } from '../pipeline/context.js';

const deps = createFilterDeps({ now: () => 0 });

function routesYaml(id: string, extra = ''): string {
  return `listen: { grpc: "127.0.0.1:9001", admin: "127.0.0.1:9002" }
${extra}routes:
  - id: ${id}
    match: { path: { prefix: / } }
`;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Harness {
  readonly watcher: ConfigWatcher;
  readonly reloads: { table: RouteTable; info: ReloadInfo }[];
  readonly rejections: (readonly ConfigError[])[];
  readonly routeId: () => string | undefined;
}

function start(t: TestContext, file: string, options: { pollMs?: number } = {}): Harness {
  const loaded = loadConfigFrom(file, { env: {} });
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map((e) => e.format()).join('\n'));
  const reloads: Harness['reloads'] = [];
  const rejections: Harness['rejections'] = [];
  const watcher = new ConfigWatcher({
    file,
    registry: FILTER_REGISTRY,
    initial: { config: loaded.config, table: compileRouteTable(loaded.config, undefined, deps) },
    ...(loaded.hash === undefined ? {} : { initialHash: loaded.hash }),
    deps,
    env: {},
    debounceMs: 20,
    pollMs: options.pollMs ?? 0,
    onReload: (table, _config, info) => reloads.push({ table, info }),
    onRejected: (errors) => rejections.push(errors),
  });
  t.after(() => {
    watcher.close();
  });
  const routeId = () => {
    const m = watcher.current.table.match({ method: 'GET', authority: 'x', ...splitPath('/x'), headers: new HeaderMap() });
    return m && !('refused' in m) ? m.route.id : undefined;
  };
  return { watcher, reloads, rejections, routeId };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  return dir;
}

test('a valid change takes effect; a stream that took the old table keeps it', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file);
  const inFlight = h.watcher.current.table;
  assert.equal(h.routeId(), 'one');
  writeFileSync(file, routesYaml('two'));
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'two');
  assert.equal(h.watcher.current.table, h.reloads[0]!.table);
  assert.deepEqual(h.reloads[0]!.info.restartRequired, []);
  assert.equal(inFlight.routes[0]!.id, 'one', 'the old table is untouched');
  assert.deepEqual(h.rejections, []);
});

test('an invalid change is refused with precise errors and the running table stays; fixing it then reloads', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file);
  const before = h.watcher.current.table;
  writeFileSync(file, routesYaml('one') + '    filters: [{ hedaers: {} }]\n');
  await waitFor('the rejection', () => h.rejections.length === 1);
  assert.deepEqual(
    h.rejections[0]!.map((e) => e.format()),
    [`${file}:5: routes[0] (id "one"): filters[0].hedaers: unknown filter "hedaers"; known filters: breaker, e2ee, e2eeKeys, headers, issuance, mtls, passport, passportKeys, sanitize, signed`],
  );
  assert.equal(h.watcher.current.table, before);
  assert.equal(await h.watcher.check(), 'unchanged', 'the same bad content is reported once');
  assert.equal(h.rejections.length, 1);
  writeFileSync(file, routesYaml('fixed'));
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'fixed');
});

test('an editor-style rename-replace (write a temp file, rename over) is detected', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file);
  const temp = join(dir, '.gatehouse.yaml.swp');
  writeFileSync(temp, routesYaml('renamed'));
  renameSync(temp, file);
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'renamed');
  // and again: the watch survives the replacement of the file it started with
  writeFileSync(temp, routesYaml('renamed-again'));
  renameSync(temp, file);
  await waitFor('the second reload', () => h.reloads.length === 2);
  assert.equal(h.routeId(), 'renamed-again');
});

test('a Kubernetes ConfigMap symlink swap (..data → new timestamped dir) is detected', async (t) => {
  const dir = tempDir(t);
  // the layout kubelet writes: file → ..data/file, ..data → ..<timestamp>/
  mkdirSync(join(dir, '..2026_11_24_00_00_00.1'));
  writeFileSync(join(dir, '..2026_11_24_00_00_00.1', 'gatehouse.yaml'), routesYaml('one'));
  symlinkSync('..2026_11_24_00_00_00.1', join(dir, '..data'));
  symlinkSync(join('..data', 'gatehouse.yaml'), join(dir, 'gatehouse.yaml'));
  const file = join(dir, 'gatehouse.yaml');
  const h = start(t, file);
  assert.equal(h.routeId(), 'one');
  // the update: a new timestamped dir, a ..data_tmp symlink to it, renamed over ..data
  mkdirSync(join(dir, '..2026_11_24_00_01_00.2'));
  writeFileSync(join(dir, '..2026_11_24_00_01_00.2', 'gatehouse.yaml'), routesYaml('swapped'));
  symlinkSync('..2026_11_24_00_01_00.2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, '..2026_11_24_00_00_00.1'), { recursive: true });
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'swapped');
  assert.equal(readFileSync(file, 'utf8'), routesYaml('swapped'));
});

test('a file that is a symlink into another directory is watched there too', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  mkdirSync(join(dir, 'link'));
  writeFileSync(join(dir, 'real', 'gatehouse.yaml'), routesYaml('one'));
  symlinkSync(join(dir, 'real', 'gatehouse.yaml'), join(dir, 'link', 'gatehouse.yaml'));
  const h = start(t, join(dir, 'link', 'gatehouse.yaml'));
  writeFileSync(join(dir, 'real', 'gatehouse.yaml'), routesYaml('edited-at-target'));
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'edited-at-target');
});

test('listen, TLS, telemetry, stores and security-event changes are reported as requiring a restart and not applied; routes are', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file);
  writeFileSync(file, routesYaml('two', 'telemetry: { logLevel: debug }\nstores: { keyPrefix: "b:" }\nsecurityEvents: { stream: { key: "gatehouse:security-events" }, maxBuffered: 7 }\n').replace('127.0.0.1:9001', '0.0.0.0:9001'));
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.reloads[0]!.info.restartRequired.length, 4);
  assert.deepEqual(h.reloads[0]!.info.restartRequired.slice(0, 2), [
    'listen.grpc changed (127.0.0.1:9001 → 0.0.0.0:9001): requires a restart',
    'telemetry.logLevel changed ("info" → "debug"): requires a restart',
  ]);
  assert.match(h.reloads[0]!.info.restartRequired[2]!, /^stores changed \(\{.*"keyPrefix":"gatehouse:".*\} → \{.*"keyPrefix":"b:".*\}\): requires a restart$/);
  assert.match(h.reloads[0]!.info.restartRequired[3]!, /^securityEvents changed \(\{.*"maxBuffered":1000.*\} → \{.*"maxBuffered":7.*\}\): requires a restart$/);
  assert.equal(h.watcher.current.config.securityEvents.maxBuffered, 1000);
  assert.equal(h.routeId(), 'two');
  assert.equal(h.watcher.current.config.listen.grpc.address, '127.0.0.1:9001', 'the running address is what current says');
  assert.equal(h.watcher.current.config.telemetry.logLevel, 'info');
  assert.equal(h.watcher.current.config.stores.keyPrefix, 'gatehouse:');
});

test('a deleted file is reported and the running config kept; the poll picks up changes without fs events', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file, { pollMs: 30 });
  rmSync(file);
  await waitFor('the rejection', () => h.rejections.length === 1);
  assert.match(h.rejections[0]![0]!.format(), /gatehouse\.yaml: cannot read the file \(ENOENT\); keeping the running config$/);
  assert.equal(h.routeId(), 'one');
  writeFileSync(file, routesYaml('back'));
  await waitFor('the reload', () => h.reloads.length === 1);
  assert.equal(h.routeId(), 'back');
});

test('close() stops watching: later changes are ignored', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('one'));
  const h = start(t, file);
  h.watcher.close();
  writeFileSync(file, routesYaml('two'));
  assert.equal(await h.watcher.check(), 'closed');
  await new Promise((r) => setTimeout(r, 100)); // longer than the debounce: nothing may arrive
  assert.equal(h.reloads.length, 0);
  assert.equal(h.routeId(), 'one');
});

test('a forced check (SIGHUP) rebuilds the routes from an unchanged file, re-reading the files it names; a plain one does not', async (t) => {
  const dir = tempDir(t);
  const keyFile = join(dir, 'e2ee.key');
  const key = (hex: string): void => { writeFileSync(keyFile, hex); };
  key('11'.repeat(32));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, routesYaml('keys', '') + `    filters:\n      - e2eeKeys: { keys: [{ keyId: 1, privateKeyFile: e2ee.key }] }\n`);
  const h = start(t, file);
  key('22'.repeat(32));
  assert.equal(await h.watcher.check(), 'unchanged', 'the config did not change: a plain check does nothing');
  assert.equal(await h.watcher.check({ force: true }), 'reloaded', 'forced: the key file is read again');
  key('not a key');
  assert.equal(await h.watcher.check({ force: true }), 'rejected', 'a key file that cannot be used refuses the reload');
  assert.match(h.rejections.at(-1)?.map((e) => e.format()).join('\n') ?? '', /e2ee\.key/);
  assert.equal(h.reloads.length, 1);
});
