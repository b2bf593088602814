// What the Redis failover fault tests (test/faults/sentinel-failover, cluster-failover) share: signed
// requests from the protocol tests' world, polling with a bound, the admin API's disable, the count
// of server changes gatehouse saw, and how an Envoy answer is tallied.
import { signRequest } from '../../sdk/app/signing.js';
import type { World } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest, ExchangeResult } from '../harness/filter-manager.js';
import type { EndToEnd } from './gatehouse.js';

export const AUTHORITY = 'api.example.com';
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** a GET on `path` signed now by the world's device, valid for `lifetimeSeconds` */
export async function signedGet(world: World, lifetimeSeconds: number, path: string): Promise<ClientRequest> {
  const headers = await signRequest({ method: 'GET', authority: AUTHORITY, path, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds(), expiresInSeconds: lifetimeSeconds });
  return { method: 'GET', path, authority: AUTHORITY, headers: Object.entries(headers) };
}

/** polls `attempt` until `done`, within `ms`; the last value otherwise fails the test */
export async function until<T>(what: string, attempt: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await attempt();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

/** POST /admin/accounts/disable: '200', or the status and the error code */
export async function disable(e2e: EndToEnd, subject: string, adminToken: string, reason: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/admin/accounts/disable`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ subject, reason }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  return response.status === 200 ? '200' : `${response.status} ${String(body['error'])}`;
}

/** `identity changed` as gatehouse counts it: each time it saw another Redis server (restart, failover) */
export async function identityChanges(e2e: EndToEnd): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${e2e.gatehouse.adminPort}/metrics`)).text();
  return Number(/^gatehouse_store_operations_total\{store="nonces",operation="identity",outcome="changed"\} (\d+)/m.exec(text)?.[1] ?? '0');
}

export const tally = (map: Map<string, number>, key: string): void => {
  map.set(key, (map.get(key) ?? 0) + 1);
};

/** status and gatehouse's reason; for an answer without one (Envoy's own), Envoy's response details */
export const answerOf = (result: ExchangeResult): string => {
  const reason = get(result.headers, 'x-gatehouse-reason');
  return result.status === 200 ? '200' : `${result.status} ${reason ?? result.details}`;
};
