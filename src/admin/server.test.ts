import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createMetrics } from '../telemetry/metrics.js';
import { sendJson, startAdminServer, type AdminHandler } from './server.js';

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function call(port: number, method: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
    });
    req.on('error', reject);
    req.end();
  });
}

async function withServer(
  run: (port: number, state: { live: boolean; ready: boolean; why: string; errors: unknown[] }) => Promise<void>,
  extraRoutes?: Map<string, AdminHandler>,
) {
  const state = { live: true, ready: false, why: 'config not loaded', errors: [] as unknown[] };
  const metrics = createMetrics({ version: '0.1.0', defaultMetrics: false });
  metrics.error('filter_error', 'orders');
  const server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: { live: () => state.live, ready: () => state.ready, details: () => ({ reason: state.why }) },
    onError: (err) => state.errors.push(err),
    ...(extraRoutes === undefined ? {} : { extraRoutes }),
  });
  try {
    assert.ok(server.port > 0);
    await run(server.port, state);
  } finally {
    await server.close();
  }
}

test('GET /metrics: the exposition with the Prometheus content type; HEAD has no body', async () => {
  await withServer(async (port) => {
    const r = await call(port, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(r.body, /^gatehouse_errors_total\{kind="filter_error",route="orders"\} 1$/m);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    const q = await call(port, 'GET', '/metrics?name[]=x');
    assert.equal(q.status, 200, 'the query is ignored');
    const h = await call(port, 'HEAD', '/metrics');
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
  });
});

test('/healthz and /readyz follow the probes, with a JSON body saying why', async () => {
  await withServer(async (port, state) => {
    let r = await call(port, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });

    r = await call(port, 'GET', '/readyz');
    assert.equal(r.status, 503);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { status: 'not_ready', reason: 'config not loaded' });

    state.ready = true;
    state.why = 'config loaded';
    r = await call(port, 'GET', '/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ready', reason: 'config loaded' });

    state.ready = false;
    state.why = 'draining';
    assert.equal((await call(port, 'GET', '/readyz')).status, 503);

    state.live = false;
    r = await call(port, 'GET', '/healthz');
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { status: 'unhealthy' });
  });
});

test('a throwing probe counts as failing', async () => {
  const metrics = createMetrics({ version: 'x', defaultMetrics: false });
  const server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: { live: () => { throw new Error('x'); }, ready: () => true, details: () => { throw new Error('broken details'); } },
  });
  try {
    assert.equal((await call(server.port, 'GET', '/healthz')).status, 503);
    const r = await call(server.port, 'GET', '/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ready', details_error: 'broken details' });
  } finally {
    await server.close();
  }
});

test('unknown paths are 404 JSON; other methods 405 with Allow', async () => {
  await withServer(async (port) => {
    let r = await call(port, 'GET', '/nope');
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), { error: 'not_found', path: '/nope' });
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      r = await call(port, method, '/metrics');
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.deepEqual(JSON.parse(r.body), { error: 'method_not_allowed' });
    }
  });
});

test('extra routes are served; a failing handler is a 500 and is reported', async () => {
  const routes = new Map<string, AdminHandler>([
    ['/.well-known/jwks.json', (_req, res) => { sendJson(res, 200, { keys: [] }); }],
    ['/boom', async () => { await Promise.resolve(); throw new Error('boom'); }],
  ]);
  await withServer(async (port, state) => {
    const r = await call(port, 'GET', '/.well-known/jwks.json');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { keys: [] });
    assert.equal((await call(port, 'POST', '/.well-known/jwks.json')).status, 405);
    const b = await call(port, 'GET', '/boom');
    assert.equal(b.status, 500);
    assert.deepEqual(JSON.parse(b.body), { error: 'internal_error' });
    assert.equal(state.errors.length, 1);
    assert.equal((state.errors[0] as Error).message, 'boom');
  }, routes);
});

test('extra routes may not shadow the built-in ones; a taken port rejects', async () => {
  const metrics = createMetrics({ version: 'x', defaultMetrics: false });
  const health = { live: () => true, ready: () => true };
  await assert.rejects(
    startAdminServer({ host: '127.0.0.1', port: 0, metrics, health, extraRoutes: new Map([['/metrics', () => undefined]]) }),
    /built in/,
  );
  const first = await startAdminServer({ host: '127.0.0.1', port: 0, metrics, health });
  try {
    await assert.rejects(startAdminServer({ host: '127.0.0.1', port: first.port, metrics, health }), /EADDRINUSE/);
  } finally {
    await first.close();
  }
});

test('close() returns with a keep-alive client connected', async () => {
  const metrics = createMetrics({ version: 'x', defaultMetrics: false });
  const server = await startAdminServer({ host: '127.0.0.1', port: 0, metrics, health: { live: () => true, ready: () => true } });
  const { Agent } = await import('node:http');
  const agent = new Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: '/healthz', agent }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end();
  });
  const t = performance.now();
  await server.close();
  assert.ok(performance.now() - t < 1000);
  agent.destroy();
});
