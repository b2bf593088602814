// Routes whose every request is signed (dynamic security), for the bench: a signed request cannot be
// replayed (its nonce is claimed), so h2load's one repeated body cannot load them. These routes are
// loaded instead with distinct pre-signed streams (bench/unique-load.ts). Four routes, with the
// messages Envoy sends for each (the response body, 1 KiB, only where the route rewrites it):
//  - signed GET:          `signed` on a GET without a body,
// and three POSTs with a 1 KiB body:
//  - signed:              `signed` (credential cached after the first request, nonce claimed in Redis),
//  - signed + passport:   the same, then `passport` (ES256, no user API: amr [] and aal 0),
//  - full:                `signed` on the ciphertext, `e2ee` (decrypt, re-encrypt), `passport`.
// The world (credential issuer, device, credential, ephemeral key) is the protocol tests' own
// (src/protocol/signing/test-support.ts); the device is enrolled through the config's own stores.
import { exportJWK } from 'jose';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessingRequest, ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { GatehouseConfig } from '../src/config/types.js';
import { HEADER } from '../src/pipeline/headers.js';
import type { EnrolledDevice } from '../src/protocol/signing/enrollment.js';
import { CREDENTIAL_ISSUER, createWorld, renewCredential } from '../src/protocol/signing/test-support.js';
import { generateDeviceKey } from '../sdk/app/e2ee.js';
import { signRequest } from '../sdk/app/signing.js';
import { frameMessages, jsonBody, type Scenario } from './extproc-load.js';
import { AUTHORITY, benchE2ee, checkAnswerKinds, checkSealedExchange, requestStream, routeLines, writeBenchConfig } from './route-kit.js';

export const SIGNED_ROUTE_KINDS = ['signed GET', 'signed', 'signed + passport', 'signed + e2ee + passport'] as const;
export type SignedRouteKind = (typeof SIGNED_ROUTE_KINDS)[number];

const PATHS: Readonly<Record<SignedRouteKind, string>> = {
  'signed GET': '/s/accounts',
  'signed': '/s/transfers',
  'signed + passport': '/p/transfers',
  'signed + e2ee + passport': '/f/transfers',
};
const PASSPORT_AUDIENCE = 'payments';
const BODY_BYTES = 1024;

export interface SignedRoutes {
  readonly configFile: string;
  readonly config: GatehouseConfig;
  /** with its e2ee key: the full route's device seals with the key it signs with */
  readonly device: EnrolledDevice;
  /** `count` streams of this route, each signed now with its own nonce, pre-framed as h2load would post them */
  streams(kind: SignedRouteKind, count: number): Promise<Buffer[]>;
  /** one such stream, freshly signed, with the check its answers must pass (plaintext upstream, passport set, ...) */
  scenario(kind: SignedRouteKind): Promise<Scenario & { readonly check: (answers: readonly ProcessingResponse[]) => void }>;
}

/**
 * Writes the routes' config, a passport signing key and an e2ee gateway key into `dir`; the stores
 * are Redis at `redisUrl`. The caller enrolls `device` (bench-stores.ts) before loading.
 */
export async function prepareSignedRoutes(dir: string, redisUrl: string): Promise<SignedRoutes> {
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const deviceE2eeKey = generateDeviceKey();
  const device: EnrolledDevice = { ...world.device, e2eePublicKey: new Uint8Array(deviceE2eeKey.publicKey) };
  const e2ee = benchE2ee(dir, 9, device.deviceId, deviceE2eeKey.privateKey);

  const passportPem = join(dir, 'signed-routes-passport.pem');
  writeFileSync(passportPem, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const passportKeys = join(dir, 'signed-routes-passport-keys.json');
  writeFileSync(passportKeys, JSON.stringify({ keys: [{ kid: 'bench-passport-1', status: 'active', file: passportPem }] }));
  const issuerJwk = { ...(await exportJWK(world.issuerKey.publicKey)), kid: world.issuerKey.kid };
  const signed = `signed: { issuer: ${JSON.stringify(CREDENTIAL_ISSUER)}, issuerKeys: [${JSON.stringify(issuerJwk)}] }`;
  const passport = `passport: { audience: ${PASSPORT_AUDIENCE}, issuer: "https://gatehouse.bench", keysFile: ${JSON.stringify(passportKeys)} }`;
  const { configFile, config } = writeBenchConfig(dir, 'gatehouse-signed.yaml', 'routes whose requests are signed (bench/signed-routes.ts)', [
    ...routeLines('bench-signed-get', 'GET', PATHS['signed GET'], [signed]),
    ...routeLines('bench-signed', 'POST', PATHS['signed'], [signed]),
    ...routeLines('bench-signed-passport', 'POST', PATHS['signed + passport'], [signed, passport]),
    ...routeLines('bench-full', 'POST', PATHS['signed + e2ee + passport'], [signed, e2ee.filter, passport]),
  ], redisUrl);

  const plaintext = Buffer.from(jsonBody(BODY_BYTES));
  const upstreamBody = randomBytes(BODY_BYTES);
  const sealed = e2ee.client.encryptRequest({ method: 'POST', path: PATHS['signed + e2ee + passport'], body: plaintext, contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`sealing: ${sealed.code}`);

  // a credential lives 300 s: a run longer than that (the soak) renews it as the app would, a minute before
  let credential = { value: world.credential, issuedAt: world.now };
  let renewing: Promise<void> | undefined;
  const currentCredential = async (): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    if (now - credential.issuedAt > 240) {
      renewing ??= renewCredential(world, now).then((value) => { credential = { value, issuedAt: now }; }).finally(() => { renewing = undefined; });
      await renewing;
    }
    return credential.value;
  };

  // each stream signed now, with its own nonce
  const messages = async (kind: SignedRouteKind): Promise<ProcessingRequest[]> => {
    const path = PATHS[kind];
    const body = kind === 'signed GET' ? undefined
      : kind === 'signed + e2ee + passport' ? { bytes: sealed.body, contentType: sealed.headers['content-type'] }
        : { bytes: plaintext, contentType: 'application/json' };
    const method = body === undefined ? 'GET' : 'POST';
    const signature = await signRequest({ method, authority: AUTHORITY, path, query: '', body: body?.bytes }, { credential: await currentCredential(), signer: world.ephemeralSigner });
    return requestStream({ method, path, ...(body === undefined ? {} : { body }), extraHeaders: signature, responseBytes: BODY_BYTES, ...(kind === 'signed + e2ee + passport' ? { upstreamBody } : {}) });
  };
  return {
    configFile,
    config,
    device,
    async streams(kind, count) {
      const out: Buffer[] = [];
      // signRequest is async (WebCrypto); a batch at a time keeps the signatures' created close together
      for (let at = 0; at < count; at += 256) {
        const batch = await Promise.all(Array.from({ length: Math.min(256, count - at) }, () => messages(kind)));
        for (const stream of batch) out.push(frameMessages(stream));
      }
      return out;
    },
    async scenario(kind) {
      const stream = await messages(kind);
      return {
        name: 'signed',
        messages: stream,
        check: (answers) => {
          checkAnswerKinds(kind, stream, answers);
          if (kind.includes('passport') && !headersSetFor(answers).includes(HEADER.passport)) throw new Error(`${kind} route: no x-passport for the upstream`);
          if (kind === 'signed + e2ee + passport') checkSealedExchange(kind, answers, plaintext, upstreamBody, sealed);
        },
      };
    },
  };
}

/** The names of the request headers the answers set for the upstream. */
function headersSetFor(answers: readonly ProcessingResponse[]): string[] {
  return answers.flatMap((answer) => {
    const response = answer.response;
    if (response.case !== 'requestHeaders' && response.case !== 'requestBody') return [];
    return response.value.response?.headerMutation?.setHeaders.map((option) => option.header?.key ?? '') ?? [];
  });
}
