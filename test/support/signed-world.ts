// A signed route behind the Envoy stand-in, and requests signed as the app SDK signs them: for attack
// tests that need a protected route with real signatures (test/attacks/).
import assert from 'node:assert/strict';
import { signRequest } from '../../sdk/app/signing.js';
import { createWorld, type World } from '../../src/protocol/signing/test-support.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd, type EndToEnd, type EnvoyVariant } from './gatehouse.js';
import { signedFilterConfig } from './signed-config.js';

export const AUTHORITY = 'api.example.com';
export const TRANSFER = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export interface SignedWorld {
  readonly world: World;
  readonly e2e: EndToEnd;
}

/**
 * Routes: `pay` (exact /api/v1/transfers, signed), `health` (exact /healthz, no filters) and `api`
 * (prefix /api/, headers only): the dev config's shape, where a weaker route sits beside a signed one.
 */
export async function signedWorld(t: { after: (fn: () => unknown) => void }, options: { unmatched?: 'deny' | 'pass'; envoy?: EnvoyVariant } = {}): Promise<SignedWorld> {
  const world = await createWorld({ now: nowSeconds() });
  const config = `
unmatched: ${options.unmatched ?? 'deny'}
routes:
  - id: pay
    match: { path: { exact: /api/v1/transfers }, methods: [POST] }
    filters:
      - signed: ${await signedFilterConfig(world)}
  - id: health
    match: { path: { exact: /healthz } }
    filters: []
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { request: { set: { x-gateway: gatehouse } } }
`;
  const e2e = await endToEnd(t, config, undefined, options.envoy);
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  return { world, e2e };
}

/** A transfer signed as the app SDK signs it, ready for either stand-in. */
export async function signedTransfer(world: World, options: { body?: string; path?: string; extraHeaders?: [string, string][] } = {}): Promise<ClientRequest> {
  const body = options.body ?? TRANSFER;
  const path = options.path ?? '/api/v1/transfers';
  const headers = await signRequest(
    { method: 'POST', authority: AUTHORITY, path, query: '', body: Buffer.from(body) },
    { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() },
  );
  return {
    method: 'POST',
    path,
    authority: AUTHORITY,
    headers: [...Object.entries(headers), ['content-type', 'application/json'], ['content-length', String(Buffer.byteLength(body))], ...(options.extraHeaders ?? [])],
    body,
  };
}
