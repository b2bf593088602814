// Hot reload wired to a running gatehouse: the new table serves new streams, and the filter
// instances of the table it replaced are released (Filter.release), each once; at stop, the last
// table's are.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { loadConfigFrom } from './config/load.js';
import { FILTER_REGISTRY } from './filters/registry.js';
import { startGatehouse } from './gatehouse.js';
import { releaseFilters } from './pipeline/release.js';
import { CompiledChain } from './pipeline/chain.js';
import { CONTINUE, type CompiledRoute, type FilterDefinition, type RouteFilter } from './pipeline/types.js';
import { watchRoutes } from './reload.js';
import { tempDir } from '../test/support/temp-dir.js';

function holderRegistry(released: string[]): ReadonlyMap<string, FilterDefinition> {
  const holder = {
    name: 'test-holder',
    order: 950,
    configSchema: z.strictObject({ tag: z.string() }),
    needs: () => ({}),
    create: (config: { tag: string }) => ({
      onRequestHeaders: () => CONTINUE,
      release: () => { released.push(config.tag); },
    }),
  } satisfies FilterDefinition;
  return new Map<string, FilterDefinition>([...FILTER_REGISTRY, [holder.name, holder as unknown as FilterDefinition]]);
}

const configText = (tag: string): string =>
  `listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nroutes:\n  - id: a\n    match: { path: { prefix: /a } }\n    filters: [{ test-holder: { tag: ${tag}-a } }]\n  - id: b\n    match: { path: { prefix: /b } }\n    filters: [{ test-holder: { tag: ${tag}-b } }]\n`;

test('a reload releases the replaced table\'s filter instances once each; stop releases the running ones', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, configText('one'));
  const released: string[] = [];
  const registry = holderRegistry(released);
  const loaded = loadConfigFrom(file, { registry, env: {} });
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map((e) => e.format()).join('\n'));
  const gatehouse = await startGatehouse({ config: loaded.config, registry, runtimeMetrics: false, logDestination: { write: () => undefined } });
  let stopped = false;
  t.after(async () => { if (!stopped) await gatehouse.stop(0); });
  const watcher = watchRoutes(file, loaded.config, gatehouse, { pollMs: 0, debounceMs: 600_000, env: {}, ...(loaded.hash === undefined ? {} : { initialHash: loaded.hash }) });
  // reads happen only when the test asks (check): a file event would wait out the debounce
  t.after(() => { watcher.close(); });

  writeFileSync(file, configText('two'));
  assert.equal(await watcher.check(), 'reloaded');
  assert.deepEqual(released.sort(), ['one-a', 'one-b'], 'the old instances, not the new ones');
  assert.equal(gatehouse.routes.current().byId('a')?.filters.some((f) => f.name === 'test-holder'), true);

  writeFileSync(file, 'routes: [ { id: broken } ]\n');
  assert.notEqual(await watcher.check(), 'reloaded');
  assert.deepEqual(released.sort(), ['one-a', 'one-b'], 'a refused reload releases nothing');

  stopped = true;
  await gatehouse.stop(0);
  assert.deepEqual(released.sort(), ['one-a', 'one-b', 'two-a', 'two-b']);
});

test('releaseFilters: each instance once, a throw collected with its route and filter, the others still released', () => {
  const calls: string[] = [];
  const shared = { release: () => { calls.push('shared'); } };
  const failing = {
    release: () => {
      throw new Error('boom');
    },
  };
  const route = (id: string, filters: RouteFilter[]): CompiledRoute => ({ id, filters, chain: new CompiledChain(filters), needs: { requestBody: false, responseHeaders: false, responseBody: false }, budgetMs: 1, maxBodyBytes: 1 });
  const failures = releaseFilters([
    route('r1', [{ name: 'x', order: 1, filter: shared }, { name: 'y', order: 2, filter: failing }, { name: 'z', order: 3, filter: {} }]),
    route('r2', [{ name: 'x', order: 1, filter: shared }, { name: 'w', order: 4, filter: { release: () => { calls.push('w'); } } }]),
  ]);
  assert.deepEqual(calls, ['shared', 'w']);
  assert.deepEqual(failures.map((f) => [f.routeId, f.filter, f.error.message]), [['r1', 'y', 'boom']]);
});
