// Fuzzing (fast-check) a signed route through both Envoy stand-ins: random signature headers,
// credentials and header maps with arbitrary bytes, mixed with parts of a real signed request. The
// property: gatehouse answers (no crash, no hang: the test's timeout), and a request whose
// signature does not verify never reaches the upstream, over ext_proc or ext_authz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { signRequest } from '../../sdk/app/signing.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd } from '../support/gatehouse.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const SIGNED_PATH = '/pay/signed';
const RUNS = 150;

test('a signed route never lets through a request whose signature does not verify, whatever its headers (fast-check, ext_proc and ext_authz)', async (t) => {
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, `
routes:
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${await signedFilterConfig(world)}
`);
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  // a real signed request for SIGNED_PATH: its parts are mixed into requests for other paths, which
  // its signature (covering @path) can never verify
  const real = await signRequest({ method: 'GET', authority: AUTHORITY, path: SIGNED_PATH, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: Math.floor(Date.now() / 1000) });
  const realHeaders = Object.entries(real);
  const anyBytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'));
  const sfLike = fc.constantFrom('gatehouse-v1=("@method" "@path");created=1;expires=2;nonce="x";keyid="k";alg="ed25519";tag="gatehouse-v1"', 'gatehouse-v1=:AAAA:', 'gatehouse-v1=', '', ';;;', 'a=(', '\u00ff\u0000');
  const headerValue = fc.oneof(anyBytes, sfLike, fc.string({ maxLength: 200 }));
  const signingHeader = (name: string) => fc.oneof(
    fc.constant<[string, string][]>([]),
    fc.constant<[string, string][]>(realHeaders.filter(([n]) => n.toLowerCase() === name)),
    headerValue.map((v): [string, string][] => [[name, v]]),
    fc.tuple(headerValue, headerValue).map(([a, b]): [string, string][] => [[name, a], [name, b]]),
  );
  const extra = fc.array(fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), headerValue), { maxLength: 8 });
  const request = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    path: fc.stringMatching(/^\/pay\/[A-Za-z0-9._~-]{0,30}$/).filter((p) => p !== SIGNED_PATH),
    signature: signingHeader('signature'),
    signatureInput: signingHeader('signature-input'),
    credential: signingHeader('device-credential'),
    extra,
    body: fc.option(fc.uint8Array({ maxLength: 2048 }), { nil: undefined }),
    adapter: fc.constantFrom('ext_proc', 'ext_authz'),
  });
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const client: ClientRequest = {
        method: r.method,
        path: r.path,
        authority: AUTHORITY,
        headers: [...r.signature, ...r.signatureInput, ...r.credential, ...r.extra],
        ...(r.body === undefined ? {} : { body: Buffer.from(r.body) }),
      };
      sent++;
      if (r.adapter === 'ext_proc') {
        const result = await e2e.envoy.request(client);
        assert.equal(result.upstreamRequest, undefined, `reached the upstream: ${result.status}`);
        assert.ok(result.status >= 400, `status ${result.status}`);
      } else {
        const result = await e2e.authz.request(client);
        assert.notEqual(result.outcome, 'ok', `allowed over ext_authz: ${result.status}`);
        assert.equal(result.upstreamRequest, undefined);
      }
    }),
    { numRuns: RUNS },
  );
  // gatehouse still serves: the real request is accepted once
  const ok = await e2e.envoy.request({ method: 'GET', path: SIGNED_PATH, authority: AUTHORITY, headers: realHeaders });
  assert.equal(ok.status, 200, 'after the fuzzing the real signed request still passes');
  t.diagnostic(`fuzz: ${sent} requests, none let through`);
});
