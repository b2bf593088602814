import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { generateDevKeyring, jwksDocument, PASSPORT_FAILURES, type PassportClaims, type PassportFailureCode } from '../../src/protocol/passport/index.js';
import { fixedIssuer, SAMPLE_SUBJECT } from '../../src/protocol/passport/testing.js';
import { passportExpress, passportFastify, passportRequestListener, type WithPassport } from './middleware.js';
import { createPassportVerifier, type PassportVerifier } from './verifier.js';

const ring = generateDevKeyring('ES256');
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const goodToken = (): string => fixedIssuer(ring, nowSeconds()).issuePassport(SAMPLE_SUBJECT);
const verifier = createPassportVerifier({ audience: 'payments', fetchJwks: () => Promise.resolve(structuredClone(jwksDocument(ring))) });
const jwksDown = createPassportVerifier({ audience: 'payments', fetchJwks: () => Promise.reject(new Error('down')) });

/** A running server on 127.0.0.1:0 and a counter of handler calls. */
interface Harness { url: string; handled: () => number; close: () => Promise<void> }
type Framework = (verifier: PassportVerifier) => Promise<Harness>;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/profile`;
}

const echo = (passport: PassportClaims | undefined | null): string => JSON.stringify({ sub: passport?.sub, txn: passport?.txn, aal: passport?.aal });

const frameworks: Record<string, Framework> = {
  'node:http': async (v) => {
    let calls = 0;
    const server = createServer(passportRequestListener(v, (req, res, passport) => {
      calls++;
      assert.equal(req.passport, passport);
      res.writeHead(200, { 'content-type': 'application/json' }).end(echo(req.passport));
    }));
    const url = await listen(server);
    return { url, handled: () => calls, close: () => new Promise((resolve) => server.close(() => { resolve(); })) };
  },
  express: async (v) => {
    let calls = 0;
    const app = express();
    app.use(passportExpress(v));
    app.get('/profile', (req, res) => {
      calls++;
      res.json(JSON.parse(echo((req as typeof req & WithPassport).passport)));
    });
    const server = createServer(app);
    const url = await listen(server);
    return { url, handled: () => calls, close: () => new Promise((resolve) => server.close(() => { resolve(); })) };
  },
  fastify: async (v) => {
    let calls = 0;
    const app = Fastify();
    app.decorateRequest('passport', null);
    app.addHook('onRequest', passportFastify(v));
    app.get('/profile', (request) => {
      calls++;
      return JSON.parse(echo((request as typeof request & { passport: PassportClaims | null }).passport)) as unknown;
    });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url: `${address}/profile`, handled: () => calls, close: () => app.close() };
  },
};

async function get(url: string, passport?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, { headers: passport === undefined ? {} : { 'x-passport': passport } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

for (const [name, start] of Object.entries(frameworks)) {
  describe(`${name} middleware on a real server`, () => {
    test('a good passport reaches the handler with the verified claims attached', async (t) => {
      const h = await start(verifier);
      t.after(h.close);
      const { status, body } = await get(h.url, goodToken());
      assert.equal(status, 200);
      assert.deepEqual(body, { sub: SAMPLE_SUBJECT.sub, txn: SAMPLE_SUBJECT.txn, aal: SAMPLE_SUBJECT.aal });
      assert.equal(h.handled(), 1);
    });

    const refusals: [string, PassportFailureCode, () => string | undefined][] = [
      ['no passport header', 'missing_passport', () => undefined],
      ['a garbage passport', 'malformed', () => 'not-a-jws'],
      ['an expired passport', 'expired', () => fixedIssuer(ring, nowSeconds() - 120).issuePassport(SAMPLE_SUBJECT)],
      ['a passport for another audience', 'wrong_audience', () => fixedIssuer(ring, nowSeconds()).issuePassport({ ...SAMPLE_SUBJECT, aud: 'lending' })],
      ['a tampered passport', 'signature_invalid', () => { const [h, , s] = goodToken().split('.'); return `${h!}.${Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')}.${s!}`; }],
    ];
    for (const [what, code, token] of refusals) {
      test(`${what} gets ${PASSPORT_FAILURES[code].status} with code ${code}, and the handler is not called`, async (t) => {
        const h = await start(verifier);
        t.after(h.close);
        const { status, body, headers } = await get(h.url, token());
        assert.equal(status, PASSPORT_FAILURES[code].status);
        assert.deepEqual(body, { error: 'passport_refused', code });
        assert.equal(headers.get('cache-control'), 'no-store');
        assert.equal(h.handled(), 0);
      });
    }

    test('an unreachable JWKS gets 503 jwks_unavailable with retry-after, and the handler is not called', async (t) => {
      const h = await start(jwksDown);
      t.after(h.close);
      const { status, body, headers } = await get(h.url, goodToken());
      assert.equal(status, 503);
      assert.deepEqual(body, { error: 'passport_refused', code: 'jwks_unavailable' });
      assert.equal(headers.get('retry-after'), '1');
      assert.equal(h.handled(), 0);
    });
  });
}

test('onRefused sees the detail for the log; the client gets only the code', async (t) => {
  const logged: string[] = [];
  const server = createServer(passportRequestListener(verifier, (_req, res) => { res.end('handled'); }, { onRefused: (v) => logged.push(`${v.code}: ${v.detail}`) }));
  const url = await listen(server);
  t.after(() => { server.close(); });
  const { status, body } = await get(url, 'a.b');
  assert.equal(status, 401);
  assert.deepEqual(body, { error: 'passport_refused', code: 'malformed' });
  assert.deepEqual(logged, ['malformed: not three dot-separated parts']);
});

test('a handler that throws gets a 500, not an unhandled rejection', async (t) => {
  const server = createServer(passportRequestListener(verifier, () => { throw new Error('handler bug'); }));
  const url = await listen(server);
  t.after(() => { server.close(); });
  const { status, body } = await get(url, goodToken());
  assert.equal(status, 500);
  assert.deepEqual(body, { error: 'internal_error' });
});

test('two x-passport headers (one smuggled beside a good one) are refused as malformed', async (t) => {
  let calls = 0;
  const server = createServer(passportRequestListener(verifier, (_req, res) => { calls++; res.end(); }));
  const url = new URL(await listen(server));
  t.after(() => { server.close(); });
  const { status, body } = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
    const req = request(url, { headers: { 'x-passport': [goodToken(), goodToken()] } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => { resolve({ status: res.statusCode, body }); });
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 401);
  assert.deepEqual(JSON.parse(body), { error: 'passport_refused', code: 'malformed' });
  assert.equal(calls, 0);
});
