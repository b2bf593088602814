// The gatehouse process as an operator runs it: start on the embedded default or a file, refuse
// an invalid file, hot-reload routes without disturbing open streams, drain on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PROCESS_WAIT_MS, runGatehouse, startGatehouseProcess } from '../support/process.js';
import { RawExtProcStream, rawClient, requestHeaders, responseHeaders } from '../support/extproc-client.js';
import type { ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';

const dec = new TextDecoder();

function configWith(routes: string, extra = ''): string {
  return `
unmatched: deny
shutdown: { graceMs: 5000 }
telemetry: { logLevel: info }
${extra}
routes:
${routes}
`;
}

const ROUTE_V1 = `
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { request: { set: { x-version: v1 } }, response: { set: { x-version: v1 } } }
`;
const ROUTE_V2 = `
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { request: { set: { x-version: v2 } }, response: { set: { x-version: v2 } } }
`;

function tempConfig(t: { after: (fn: () => void) => void }, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cfg-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, text);
  return file;
}

function setHeader(answer: ProcessingResponse, name: string): string | undefined {
  const r = answer.response;
  const common = r.case === 'requestHeaders' || r.case === 'responseHeaders' ? r.value.response : undefined;
  const h = common?.headerMutation?.setHeaders.find((s) => s.header?.key === name);
  return h?.header ? dec.decode(h.header.rawValue) : undefined;
}

const GET = (path: string): [string, string][] => [[':method', 'GET'], [':path', path], [':authority', 'api.example.com'], [':scheme', 'https'], ['x-request-id', `r-${path}`]];

test('npm start without GATEHOUSE_CONFIG runs the embedded default and warns loudly', async (t) => {
  const gh = await startGatehouseProcess({ GATEHOUSE_CONFIG: '' });
  t.after(() => { gh.child.kill('SIGKILL'); });
  assert.match(gh.stderr(), /EMBEDDED DEVELOPMENT DEFAULT/);
  assert.ok(gh.lines.some((l) => l['level'] === 'warn' && String(l['msg']).includes('embedded development default')));
  const ready = await fetch(`http://127.0.0.1:${gh.adminPort}/readyz`);
  assert.equal(ready.status, 200);
});

test('an invalid config file stops start-up with exit 2 and an error naming the file, the route and the field', async (t) => {
  const file = tempConfig(t, configWith(`
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headerz: {}
`));
  const run = runGatehouse({ GATEHOUSE_CONFIG: file });
  const code = await run.exited;
  assert.equal(code, 2);
  assert.match(run.stderr(), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*routes\\[0\\].*"api".*filters\\[0\\].*headerz`, 's'));
});

test('a config other than the embedded default that names a dev-only key file is refused at start (exit 2), naming the file', async (t) => {
  const devKey = join(import.meta.dirname, '../../config/e2ee-gateway-7.dev-only.key');
  const file = tempConfig(t, configWith(`
  - id: keys
    match: { path: { exact: /keys } }
    filters:
      - e2eeKeys: { keys: [{ keyId: 7, privateKeyFile: ${JSON.stringify(devKey)} }] }
`));
  const run = runGatehouse({ GATEHOUSE_CONFIG: file });
  // a gatehouse that wrongly starts never exits on its own: stop it and fail, rather than hang
  const started = setTimeout(() => run.child.kill('SIGKILL'), PROCESS_WAIT_MS);
  t.after(() => { clearTimeout(started); run.child.kill('SIGKILL'); });
  assert.equal(await run.exited, 2, `it started: ${run.stdout().slice(0, 300)}`);
  assert.match(run.stderr(), /names dev-only key files, whose private halves are public/);
  assert.ok(run.stderr().includes(devKey));
});

test('hot reload: a valid change applies to new streams while an open stream keeps its routes; an invalid change is refused and counted', async (t) => {
  const file = tempConfig(t, configWith(ROUTE_V1));
  const gh = await startGatehouseProcess({ GATEHOUSE_CONFIG: file });
  t.after(() => { gh.child.kill('SIGKILL'); });
  const client = rawClient(gh.grpcPort);
  t.after(() => { client.close(); });

  const open = new RawExtProcStream(client);
  open.send(requestHeaders(GET('/api/a'), true));
  assert.equal(setHeader(await open.next(), 'x-version'), 'v1');

  // an editor's save: write a temp file and rename it over the config
  writeFileSync(`${file}.tmp`, configWith(ROUTE_V2));
  renameSync(`${file}.tmp`, file);
  await gh.waitFor((l) => l['msg'] === 'config reloaded: new streams use the new routes');

  const fresh = new RawExtProcStream(client);
  fresh.send(requestHeaders(GET('/api/b'), true));
  assert.equal(setHeader(await fresh.next(), 'x-version'), 'v2', 'a new stream uses the new routes');
  open.send(responseHeaders([[':status', '200']]));
  assert.equal(setHeader(await open.next(), 'x-version'), 'v1', 'the open stream finished on the routes it started with');
  open.closeLikeEnvoy();
  fresh.closeLikeEnvoy();

  writeFileSync(file, configWith(`
  - id: api
    match: { path: { prefix: /api/ } }
    budgetMs: fast
    filters: []
`));
  const refused = await gh.waitFor((l) => l['msg'] === 'config reload refused: the running routes stay');
  assert.match(JSON.stringify(refused['errors']), /budgetMs/);
  const after = new RawExtProcStream(client);
  after.send(requestHeaders(GET('/api/c'), true));
  assert.equal(setHeader(await after.next(), 'x-version'), 'v2', 'the last good routes stay');
  after.closeLikeEnvoy();
  const metrics = await (await fetch(`http://127.0.0.1:${gh.adminPort}/metrics`)).text();
  assert.match(metrics, /gatehouse_config_reloads_total\{result="failure"\} 1/);
  assert.match(metrics, /gatehouse_config_reloads_total\{result="success"\} 1/);
});

test('SIGTERM: readiness goes off, new streams are refused, the stream in flight finishes, the process exits 0', async (t) => {
  const file = tempConfig(t, configWith(ROUTE_V1));
  const gh = await startGatehouseProcess({ GATEHOUSE_CONFIG: file });
  t.after(() => { gh.child.kill('SIGKILL'); });
  const client = rawClient(gh.grpcPort);
  t.after(() => { client.close(); });

  // an HTTP request whose upstream has not answered yet: request headers done, response pending
  const inFlight = new RawExtProcStream(client);
  inFlight.send(requestHeaders(GET('/api/slow'), true));
  await inFlight.next();

  gh.child.kill('SIGTERM');
  await gh.waitFor((l) => l['msg'] === 'draining: readiness off, refusing new streams');
  const ready = await fetch(`http://127.0.0.1:${gh.adminPort}/readyz`);
  assert.equal(ready.status, 503);

  const late = new RawExtProcStream(client);
  late.send(requestHeaders(GET('/api/late'), true));
  const lateEnd = await late.ended;
  assert.equal(lateEnd.code, grpc.status.UNAVAILABLE);

  inFlight.send(responseHeaders([[':status', '200']]));
  const answer = await inFlight.next();
  assert.equal(answer.response.case, 'responseHeaders');
  inFlight.closeLikeEnvoy();
  assert.equal(await gh.exited, 0);
  const stopped = gh.lines.find((l) => l['msg'] === 'stopped');
  assert.equal(stopped?.['finished_in_grace'], true);
  const logged = gh.lines.find((l) => l['msg'] === 'request' && l['path'] === '/api/slow');
  assert.equal(logged?.['status'], 200, 'the drained request was logged with its status');
});
