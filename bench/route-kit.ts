// What the bench's real routes (e2ee-route.ts, signed-routes.ts) are made of, in one place: their
// config file, an e2ee gateway key with an app client sealing to it, the Process stream Envoy sends
// for one request, and the check that an e2ee exchange really happened.
import { create } from '@bufbuild/protobuf';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpBodySchema, HttpHeadersSchema, ProcessingRequestSchema, type ProcessingRequest, type ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { parseConfig } from '../src/config/load.js';
import { FILTER_REGISTRY } from '../src/filters/registry.js';
import type { GatehouseConfig } from '../src/config/types.js';
import { E2EE_RESPONSE_MEDIA_TYPE } from '../src/protocol/e2ee/index.js';
import { E2eeKeyring, encodeKeyConfigList, keyConfigOf, loadGatewayKey } from '../src/protocol/e2ee/keys.js';
import { createE2eeClient, type E2eeClient, type SealedRequest } from '../sdk/app/e2ee.js';
import { headerMap, replacedBody, requestHeaderPairs, responseHeaderPairs } from './extproc-load.js';

/** The API authority the bench requests carry, which an e2ee app binds as its audience. */
export const AUTHORITY: string = (() => {
  const authority = requestHeaderPairs().find(([key]) => key === ':authority')?.[1];
  if (authority === undefined) throw new Error('the bench request headers carry no :authority');
  return authority;
})();

/**
 * Writes a config with the bench's common settings (access log and metrics on, as in production)
 * and these route lines, its stores in Redis at `redisUrl` (else memory), and parses it.
 */
export function writeBenchConfig(dir: string, fileName: string, what: string, routeLines: readonly string[], redisUrl?: string): { configFile: string; config: GatehouseConfig } {
  const stores = redisUrl === undefined ? [] : ['stores:', '  kind: redis', `  redis: { mode: standalone, url: ${JSON.stringify(redisUrl)} }`];
  const yaml = [
    `# written by the bench: ${what}`,
    'listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }   # run.ts names the ports in the env',
    'unmatched: deny',
    'defaults: { budgetMs: 150 }',
    'telemetry: { logLevel: info, serviceName: gatehouse-bench, accessLog: true }',
    'shutdown: { graceMs: 2000 }',
    ...stores,
    'routes:',
    ...routeLines,
  ].join('\n');
  const configFile = join(dir, fileName);
  writeFileSync(configFile, `${yaml}\n`);
  const parsed = parseConfig(yaml, configFile, { registry: FILTER_REGISTRY });
  if (!parsed.ok) throw new Error(`the bench config ${fileName} does not parse:\n${parsed.errors.map((e) => e.format()).join('\n')}`);
  return { configFile, config: parsed.config };
}

/** One route's lines for writeBenchConfig: its id, exact path, method and filter entries. */
export function routeLines(id: string, method: 'GET' | 'POST', path: string, filters: readonly string[]): string[] {
  return [`  - id: ${id}`, `    match: { path: { exact: ${path} }, methods: [${method}] }`, '    filters:', ...filters.map((filter) => `      - ${filter}`)];
}

export interface BenchE2ee {
  /** the `e2ee` filter entry naming the key file */
  readonly filter: string;
  readonly keyring: E2eeKeyring;
  /** the app's client for a device with this X25519 key */
  readonly client: E2eeClient;
}

/** A fresh gateway key written into `dir`, the route's filter entry, and the app client of `deviceId` sealing to it. */
export function benchE2ee(dir: string, keyId: number, deviceId: string, devicePrivateKey: Parameters<typeof createE2eeClient>[0]['devicePrivateKey']): BenchE2ee {
  const keyFile = join(dir, `e2ee-gateway-${keyId}.key`);
  const pem = generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' });
  writeFileSync(keyFile, pem, { mode: 0o600 });
  const gatewayKey = loadGatewayKey({ keyId, privateKey: pem });
  const made = createE2eeClient({ keyConfigs: encodeKeyConfigList([keyConfigOf(gatewayKey)]), deviceKeyId: deviceId, devicePrivateKey, audience: AUTHORITY, aeads: ['aes-128-gcm'] });
  if (!made.ok) throw new Error(`e2ee client: ${made.code}`);
  return {
    filter: `e2ee: { keys: [{ keyId: ${keyId}, privateKeyFile: ${JSON.stringify(keyFile)}, aeads: [aes-128-gcm] }], audience: ${AUTHORITY}, plaintext: refuse }`,
    keyring: new E2eeKeyring([gatewayKey]),
    client: made.client,
  };
}

export interface RequestStream {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** absent: a request without a body */
  readonly body?: { readonly bytes: Uint8Array; readonly contentType: string };
  /** added to the bench request headers (e.g. the signature fields) */
  readonly extraHeaders?: Readonly<Record<string, string>>;
  /** the upstream's answer, its length in the response headers */
  readonly responseBytes: number;
  /** present: the route rewrites the response body, so Envoy sends it (the others' streams end at the response headers) */
  readonly upstreamBody?: Uint8Array;
}

/** The Process stream Envoy sends for this request, in order. */
export function requestStream(r: RequestStream): ProcessingRequest[] {
  const requestPairs: [string, string][] = [
    ...requestHeaderPairs().flatMap(([key, value]): [string, string][] => {
      if (key === ':path') return [[key, r.path]];
      if (key === ':method') return [[key, r.method]];
      if (key === 'content-type') return r.body === undefined ? [] : [[key, r.body.contentType]];
      if (key === 'content-length') return r.body === undefined ? [] : [[key, String(r.body.bytes.length)]];
      return [[key, value]];
    }),
    ...Object.entries(r.extraHeaders ?? {}),
  ];
  const responsePairs = responseHeaderPairs().map(([key, value]): [string, string] => (key === 'content-length' ? [key, String(r.responseBytes)] : [key, value]));
  return [
    create(ProcessingRequestSchema, { request: { case: 'requestHeaders', value: create(HttpHeadersSchema, { headers: headerMap(requestPairs), endOfStream: r.body === undefined }) } }),
    ...(r.body === undefined ? [] : [create(ProcessingRequestSchema, { request: { case: 'requestBody', value: create(HttpBodySchema, { body: r.body.bytes, endOfStream: true }) } })]),
    create(ProcessingRequestSchema, { request: { case: 'responseHeaders', value: create(HttpHeadersSchema, { headers: headerMap(responsePairs), endOfStream: false }) } }),
    ...(r.upstreamBody === undefined ? [] : [create(ProcessingRequestSchema, { request: { case: 'responseBody', value: create(HttpBodySchema, { body: r.upstreamBody, endOfStream: true }) } })]),
  ];
}

/** Throws unless each answer is of its message's kind. */
export function checkAnswerKinds(route: string, messages: readonly ProcessingRequest[], answers: readonly ProcessingResponse[]): void {
  const kinds = answers.map((a) => a.response.case).join(',');
  const expected = messages.map((m) => m.request.case).join(',');
  if (kinds !== expected) throw new Error(`${route} route answered ${kinds}, expected ${expected}`);
}

/** Throws unless the upstream got the app's plaintext and the app opens the answer to the upstream's body. */
export function checkSealedExchange(route: string, answers: readonly ProcessingResponse[], plaintext: Uint8Array, upstreamBody: Uint8Array, sealed: SealedRequest): void {
  const forwarded = replacedBody(answers[1]);
  if (forwarded === undefined || !Buffer.from(forwarded).equals(plaintext)) throw new Error(`${route} route: the upstream would not get the plaintext`);
  const sealedAnswer = replacedBody(answers[3]);
  if (sealedAnswer === undefined) throw new Error(`${route} route: the response body was not replaced`);
  const opened = sealed.decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: sealedAnswer });
  if (!opened.ok || !opened.plaintext.equals(upstreamBody)) throw new Error(`${route} route: the app cannot open the answer: ${opened.ok ? 'wrong plaintext' : opened.code}`);
}
