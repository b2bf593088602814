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
import { create } from '@bufbuild/protobuf';
import { exportJWK } from 'jose';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpBodySchema, HttpHeadersSchema, ProcessingRequestSchema, type ProcessingRequest, type ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { parseConfig } from '../src/config/load.js';
import type { GatehouseConfig } from '../src/config/schema.js';
import { E2EE_RESPONSE_MEDIA_TYPE } from '../src/protocol/e2ee/index.js';
import { encodeKeyConfigList, keyConfigOf, loadGatewayKey } from '../src/protocol/e2ee/keys.js';
import type { EnrolledDevice } from '../src/protocol/signing/enrollment.js';
import { CREDENTIAL_ISSUER, createWorld, type World } from '../src/protocol/signing/test-support.js';
import { createE2eeClient, generateDeviceKey, type SealedRequest } from '../sdk/app/e2ee.js';
import { signRequest } from '../sdk/app/signing.js';
import { frameMessages, headerMap, jsonBody, replacedBody, requestHeaderPairs, responseHeaderPairs, type Scenario } from './extproc-load.js';
import { HEADER } from '../src/pipeline/headers.js';

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
  const authority = requestHeaderPairs().find(([key]) => key === ':authority')?.[1];
  if (authority === undefined) throw new Error('the bench request headers carry no :authority');

  const gatewayKeyFile = join(dir, 'signed-routes-e2ee-gateway.key');
  writeFileSync(gatewayKeyFile, generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const passportPem = join(dir, 'signed-routes-passport.pem');
  writeFileSync(passportPem, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const passportKeys = join(dir, 'signed-routes-passport-keys.json');
  writeFileSync(passportKeys, JSON.stringify({ keys: [{ kid: 'bench-passport-1', status: 'active', file: passportPem }] }));

  const issuerJwk = { ...(await exportJWK(world.issuerKey.publicKey)), kid: world.issuerKey.kid };
  const signed = `- signed: { issuer: ${JSON.stringify(CREDENTIAL_ISSUER)}, issuerKeys: [${JSON.stringify(issuerJwk)}] }`;
  const passport = `- passport: { audience: ${PASSPORT_AUDIENCE}, issuer: "https://gatehouse.bench", keysFile: ${JSON.stringify(passportKeys)} }`;
  const e2ee = `- e2ee: { keys: [{ keyId: 9, privateKeyFile: ${JSON.stringify(gatewayKeyFile)}, aeads: [aes-128-gcm] }], audience: ${authority}, plaintext: refuse }`;
  const route = (id: string, kind: SignedRouteKind, filters: string[]): string[] => [
    `  - id: ${id}`,
    `    match: { path: { exact: ${PATHS[kind]} }, methods: [${kind === 'signed GET' ? 'GET' : 'POST'}] }`,
    '    filters:',
    ...filters.map((filter) => `      ${filter}`),
  ];
  const yaml = [
    '# written by the bench (bench/signed-routes.ts): routes whose requests are signed',
    'listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }   # run.ts names the ports in the env',
    'unmatched: deny',
    'defaults: { budgetMs: 150 }',
    'telemetry: { logLevel: info, serviceName: gatehouse-bench, accessLog: true }',
    'shutdown: { graceMs: 2000 }',
    'stores:',
    '  kind: redis',
    `  redis: { mode: standalone, url: ${JSON.stringify(redisUrl)} }`,
    'routes:',
    ...route('bench-signed-get', 'signed GET', [signed]),
    ...route('bench-signed', 'signed', [signed]),
    ...route('bench-signed-passport', 'signed + passport', [signed, passport]),
    ...route('bench-full', 'signed + e2ee + passport', [signed, e2ee, passport]),
  ].join('\n');
  const configFile = join(dir, 'gatehouse-signed.yaml');
  writeFileSync(configFile, `${yaml}\n`);
  const parsed = parseConfig(yaml, configFile);
  if (!parsed.ok) throw new Error(`the signed-routes bench config does not parse:\n${parsed.errors.map((e) => e.format()).join('\n')}`);

  const deviceE2eeKey = generateDeviceKey();
  const device: EnrolledDevice = { ...world.device, e2eePublicKey: new Uint8Array(deviceE2eeKey.publicKey) };
  const madeClient = createE2eeClient({
    keyConfigs: encodeKeyConfigList([keyConfigOf(loadGatewayKey({ keyId: 9, privateKey: readFileSync(gatewayKeyFile, 'utf8') }))]),
    deviceKeyId: device.deviceId, devicePrivateKey: deviceE2eeKey.privateKey, audience: authority, aeads: ['aes-128-gcm'],
  });
  if (!madeClient.ok) throw new Error(`e2ee client: ${madeClient.code}`);
  const plaintext = Buffer.from(jsonBody(BODY_BYTES));
  const upstreamBody = randomBytes(BODY_BYTES);
  const sealed = madeClient.client.encryptRequest({ method: 'POST', path: PATHS['signed + e2ee + passport'], body: plaintext, contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`sealing: ${sealed.code}`);

  const messages = async (kind: SignedRouteKind): Promise<ProcessingRequest[]> =>
    kind === 'signed + e2ee + passport' ? streamMessages(world, authority, PATHS[kind], { body: sealed.body, contentType: sealed.headers['content-type'] }, upstreamBody)
      : kind === 'signed GET' ? streamMessages(world, authority, PATHS[kind], undefined, undefined)
        : streamMessages(world, authority, PATHS[kind], { body: plaintext, contentType: 'application/json' }, undefined);
  return {
    configFile,
    config: parsed.config,
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
      const expectedKinds = stream.map((message) => message.request.case);
      return {
        name: 'signed',
        messages: stream,
        check: (answers) => { checkSignedAnswers(kind, answers, expectedKinds, plaintext, upstreamBody, kind === 'signed + e2ee + passport' ? sealed : undefined); },
      };
    },
  };
}


/** The stream of one signed request: a POST with `request` as its body, or a GET without one. */
async function streamMessages(world: World, authority: string, path: string, request: { body: Uint8Array; contentType: string } | undefined, upstreamBody: Uint8Array | undefined): Promise<ProcessingRequest[]> {
  const method = request === undefined ? 'GET' : 'POST';
  const signature = await signRequest({ method, authority, path, query: '', body: request?.body }, { credential: world.credential, signer: world.ephemeralSigner });
  const requestPairs: [string, string][] = [
    ...requestHeaderPairs().flatMap(([key, value]): [string, string][] => {
      if (key === ':path') return [[key, path]];
      if (key === ':method') return [[key, method]];
      if (key === 'content-type') return request === undefined ? [] : [[key, request.contentType]];
      if (key === 'content-length') return request === undefined ? [] : [[key, String(request.body.length)]];
      return [[key, value]];
    }),
    ...Object.entries(signature),
  ];
  const responsePairs = responseHeaderPairs().map(([key, value]): [string, string] => (key === 'content-length' ? [key, String(BODY_BYTES)] : [key, value]));
  const messages = [
    create(ProcessingRequestSchema, { request: { case: 'requestHeaders', value: create(HttpHeadersSchema, { headers: headerMap(requestPairs), endOfStream: request === undefined }) } }),
    ...(request === undefined ? [] : [create(ProcessingRequestSchema, { request: { case: 'requestBody', value: create(HttpBodySchema, { body: request.body, endOfStream: true }) } })]),
    create(ProcessingRequestSchema, { request: { case: 'responseHeaders', value: create(HttpHeadersSchema, { headers: headerMap(responsePairs), endOfStream: false }) } }),
  ];
  // Only a route that rewrites the response body asks Envoy for it (mode_override); the others'
  // streams end with the response headers, as Envoy's would.
  if (upstreamBody !== undefined) messages.push(create(ProcessingRequestSchema, { request: { case: 'responseBody', value: create(HttpBodySchema, { body: upstreamBody, endOfStream: true }) } }));
  return messages;
}

function checkSignedAnswers(
  kind: SignedRouteKind,
  answers: readonly ProcessingResponse[],
  expectedKinds: readonly (string | undefined)[],
  plaintext: Uint8Array,
  upstreamBody: Uint8Array,
  sealed: SealedRequest | undefined,
): void {
  const kinds = answers.map((a) => a.response.case).join(',');
  if (kinds !== expectedKinds.join(',')) throw new Error(`${kind} route answered ${kinds}, expected ${expectedKinds.join(',')}`);
  const setHeaders = answers.flatMap((answer) => {
    const response = answer.response;
    if (response.case !== 'requestHeaders' && response.case !== 'requestBody') return [];
    return response.value.response?.headerMutation?.setHeaders.map((option) => option.header?.key ?? '') ?? [];
  });
  if (kind.includes('passport') && !setHeaders.includes(HEADER.passport)) throw new Error(`${kind} route: no x-passport for the upstream`);
  if (sealed === undefined) return;
  const forwarded = replacedBody(answers[1]);
  if (forwarded === undefined || !Buffer.from(forwarded).equals(plaintext)) throw new Error(`${kind} route: the upstream would not get the plaintext`);
  const sealedAnswer = replacedBody(answers[3]);
  const opened = sealedAnswer === undefined ? undefined : sealed.decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: sealedAnswer });
  if (opened === undefined || !opened.ok || !opened.plaintext.equals(upstreamBody)) throw new Error(`${kind} route: the app cannot open the answer`);
}
