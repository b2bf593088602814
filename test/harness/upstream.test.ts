// Self-tests of the recording HTTP/1.1 upstream.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { startUpstream, type Pair } from './upstream.js';

async function call(port: number, opts: { method: string; path: string; headers?: Pair[]; body?: string; trailers?: Pair[] }): Promise<{ status: number; headers: Pair[]; body: string; trailers: Pair[] }> {
  return new Promise((resolve, reject) => {
    const flat: string[] = ['host', 'upstream.test'];
    for (const [n, v] of opts.headers ?? []) flat.push(n, v);
    const req = request({ host: '127.0.0.1', port, method: opts.method, path: opts.path, headers: flat }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const pairs = (raw: string[]): Pair[] => raw.flatMap((v, i) => (i % 2 === 0 ? [[v.toLowerCase(), raw[i + 1]!] as Pair] : []));
        resolve({ status: res.statusCode ?? 0, headers: pairs(res.rawHeaders), body: Buffer.concat(chunks).toString(), trailers: pairs(res.rawTrailers) });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    if (opts.trailers !== undefined) req.addTrailers(Object.fromEntries(opts.trailers));
    req.end();
  });
}

test('upstream records requests (ordered headers, body, trailers) and echoes by default', async () => {
  const u = await startUpstream();
  try {
    const r = await call(u.port, { method: 'POST', path: '/x?y=1', headers: [['X-B', '2'], ['x-a', '1'], ['trailer', 'x-t']], body: 'hello', trailers: [['x-t', 'tv']] });
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.body) as { method: string; path: string; body: string };
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.path, '/x?y=1');
    assert.equal(echoed.body, 'hello');
    const rec = u.requests[0]!;
    assert.deepEqual(rec.headers.filter(([n]) => n.startsWith('x-')), [['x-b', '2'], ['x-a', '1']]);
    assert.equal(rec.body.toString(), 'hello');
    assert.deepEqual(rec.trailers, [['x-t', 'tv']]);
  } finally {
    await u.close();
  }
});

test('upstream plays scripted responses in order, with status, headers, chunked body, trailers and delay', async () => {
  const u = await startUpstream();
  try {
    u.enqueue({ status: 418, headers: [['x-s', '1']], body: [Buffer.from('a'), Buffer.from('b')], trailers: [['x-t', '2']], delayMs: 30, chunkDelayMs: 5 }, { status: 204 });
    const t0 = Date.now();
    const r1 = await call(u.port, { method: 'GET', path: '/' });
    assert.ok(Date.now() - t0 >= 25);
    assert.equal(r1.status, 418);
    assert.equal(r1.headers.find(([n]) => n === 'x-s')?.[1], '1');
    assert.equal(r1.body, 'ab');
    assert.deepEqual(r1.trailers, [['x-t', '2']]);
    const r2 = await call(u.port, { method: 'GET', path: '/' });
    assert.equal(r2.status, 204);
    const r3 = await call(u.port, { method: 'GET', path: '/echo' });
    assert.equal(r3.status, 200);
    assert.equal(u.requests.length, 3);
  } finally {
    await u.close();
  }
});
