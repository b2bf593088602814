// `npm run demo`: gatehouse on its embedded dev config, the Envoy stand-in configured with the
// shipped EnvoyFilter, and an echo upstream, all on loopback. Each scenario prints what the client
// sent, what it got back and what the upstream saw. Later features add their scenarios here.
import { loadConfig } from '../src/config/load.js';
import { FILTER_REGISTRY } from '../src/filters/registry.js';
import { startGatehouse } from '../src/gatehouse.js';
import { protocolScenarios } from './protocol.js';
import { ExtProcStandIn, type ClientRequest } from '../test/harness/ext-proc.js';
import { echoResponse, startUpstream, type Pair, type UpstreamResponse } from '../test/harness/upstream.js';
import { shippedExtAuthzConfig, shippedExtProcConfig } from '../test/support/manifests.js';
import { ExtAuthzStandIn } from '../test/harness/ext-authz.js';
import { createTestCa } from '../test/support/certificates.js';
import { DEV_DEVICE_BASE_PATH, DEV_LOGIN, devActors, devSignedApp } from './dev-signing.js';
import { deviceApp, json, loginToken, post, type GatewayAnswer } from '../test/support/device-app.js';
import { generateSigner, jwkThumbprint, signRequest } from '../sdk/app/signing.js';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { fraudScenario } from './fraud.js';
import { operationsScenario } from './operations.js';
import { readToken } from '../src/security/admin.js';
import { explainRequest, parseExplainRequest } from '../src/check.js';
import type { RunningGatehouse } from '../src/gatehouse.js';
import { createE2eeClient, generateDeviceKey } from '../sdk/app/e2ee.js';
import { enrolledDevice } from '../src/stores/test-devices.js';
import { createPassportVerifier } from '../sdk/upstream/index.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (process.stdout.isTTY ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (process.stdout.isTTY ? `\x1b[31m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

interface Scenario {
  readonly title: string;
  readonly why: string;
  readonly request: ClientRequest;
  /** headers worth showing in what the client got back */
  readonly showResponseHeaders?: readonly string[];
  /** which Envoy filter asks gatehouse: ext_proc (default) or ext_authz */
  readonly via?: 'ext_proc' | 'ext_authz';
  /** the client certificate presented on the mTLS downstream (made by the demo's CA at start) */
  readonly clientCertificate?: keyof DemoCertificates;
  /** print gatehouse's decision as Envoy's access log sees it (dynamic metadata) */
  readonly showDecision?: boolean;
}

interface DemoCertificates {
  readonly acme: string;
  readonly devKim: string;
  readonly stranger: string;
}

/** made at start by a throw-away CA (openssl), never checked in; config/clients.dev.yaml knows acme and dev-kim */
function demoCertificates(): DemoCertificates & { close(): void } {
  const ca = createTestCa();
  return {
    acme: ca.issue({ subject: '/O=Acme/CN=acme', uri: 'spiffe://partners.example.com/acme' }).pem,
    devKim: ca.issue({ subject: '/O=Example Dev/CN=dev-kim' }).pem,
    stranger: ca.issue({ subject: '/O=Nobody/CN=stranger', uri: 'spiffe://partners.example.com/stranger' }).pem,
    close: () => { ca.close(); },
  };
}

const SCENARIOS: Scenario[] = [
  {
    title: 'Shadow mode: an unsigned statement request on a route trying `signed` (route statements-trial)',
    why: 'the route runs signed in shadow: the refusal it would make is logged and counted as shadow_deny, and the request goes on',
    request: { method: 'GET', path: '/api/v1/statements/2026-11', authority: 'api.example.com' },
    showDecision: true,
  },
  {
    title: 'Read an account (route accounts-read, template /api/v1/accounts/:accountId)',
    why: 'the headers filter tags the request for the upstream',
    request: { method: 'GET', path: '/api/v1/accounts/42', authority: 'api.example.com', headers: [['user-agent', 'superapp-ios/7.3']] },
  },
  {
    title: 'A client forges identity and mesh headers (route api)',
    why: 'sanitize runs on every route: x-passport, x-gatehouse-* and x-forwarded-client-cert are for gatehouse and the mesh to set, and the dev config adds x-user-id',
    request: {
      method: 'POST',
      path: '/api/transfers',
      authority: 'api.example.com',
      headers: [
        ['content-type', 'application/json'],
        ['x-passport', 'eyJhbGciOiJub25lIn0.forged.'],
        ['x-forwarded-client-cert', 'By=spiffe://cluster.local/ns/partner/sa/api'],
        ['x-gatehouse-decision-id', 'made-up'],
        ['x-user-id', 'admin'],
      ],
      body: '{"amount":1000,"to":"110-222-333"}',
    },
    showResponseHeaders: ['x-content-type-options'],
  },
  {
    title: 'A request with more headers than the route allows',
    why: 'sanitize refuses it before any upstream work: 431 with its reason code (the dev config allows 50)',
    request: { method: 'GET', path: '/api/accounts', authority: 'api.example.com', headers: Array.from({ length: 60 }, (_, i): Pair => [`x-padding-${i}`, 'x']) },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A partner pays with its client certificate (route partner-payments, mtls)',
    why: 'Envoy verified the certificate; its SPIFFE id is acme in config/clients.dev.yaml, allowed POST with payments:write. The upstream learns who called in x-gatehouse-client; an audit line records the decision',
    clientCertificate: 'acme',
    request: { method: 'POST', path: '/partner/v1/payments/transfers', authority: 'api.example.com', headers: [['content-type', 'application/json'], ['x-gatehouse-client', 'admin']], body: '{"amount":1000}' },
  },
  {
    title: 'The same call without a client certificate',
    why: 'the route requires one: 401 client_certificate_required',
    request: { method: 'POST', path: '/partner/v1/payments/transfers', authority: 'api.example.com' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A valid certificate no registry entry knows (over ext_authz)',
    why: 'Envoy trusts the CA, but the client is not registered: 403 client_unknown',
    via: 'ext_authz',
    clientCertificate: 'stranger',
    request: { method: 'GET', path: '/partner/v1/payments/1', authority: 'api.example.com' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A developer who may only read tries to pay',
    why: 'dev-kim is known by subject but allowed GET only: 403 client_not_allowed',
    clientCertificate: 'devKim',
    request: { method: 'POST', path: '/partner/v1/payments/transfers', authority: 'api.example.com' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'Liveness through the gateway (route health, no filters)',
    why: 'matched, so it passes; nothing is added',
    request: { method: 'GET', path: '/healthz', authority: 'api.example.com' },
  },
  {
    title: 'A path no route knows',
    why: 'unmatched requests are denied (unmatched: deny) with a stable reason code and a decision id',
    request: { method: 'GET', path: '/internal/admin', authority: 'api.example.com', headers: [['x-request-id', 'demo-unmatched-1']] },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A path that tries to climb out of /api/ with an encoded dot segment',
    why: 'routes match the normalized path (%2e%2e is ..), so this is /internal/admin, which no route allows',
    request: { method: 'GET', path: '/api/%2e%2e/internal/admin', authority: 'api.example.com' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A path variant of the signed transfers route: a trailing slash (issue 21)',
    why: 'Express and older Spring route /api/v1/transfers/ to the transfers handler, so the path policy decides it on transfers-signed, not on the api prefix: unsigned, 401 signature_missing',
    request: { method: 'POST', path: '/api/v1/transfers/', authority: 'api.example.com', headers: [['content-type', 'application/json']], body: '{"amount":1000}' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'The same with a Tomcat path parameter, over ext_authz',
    why: '";jsessionid=x" is cut before matching, as Tomcat and Spring do: still transfers-signed, 401 signature_missing',
    via: 'ext_authz',
    request: { method: 'POST', path: '/api/v1/transfers;jsessionid=x', authority: 'api.example.com', headers: [['content-type', 'application/json']], body: '{"amount":1000}' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'A case variant of the same route',
    why: 'transfers-signed is case-sensitive (match.caseSensitive, the default): refused 400 path_variant rather than given to the weaker api prefix',
    request: { method: 'POST', path: '/api/v1/Transfers', authority: 'api.example.com', headers: [['content-type', 'application/json']], body: '{"amount":1000}' },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
  {
    title: 'Reserved headers spelled with underscores',
    why: 'CGI/WSGI/PHP upstreams read x_passport as X-Passport: sanitize compares names after folding _ to -, so neither spelling reaches the upstream',
    request: { method: 'GET', path: '/api/orders', authority: 'api.example.com', headers: [['x_passport', 'eyJhbGciOiJub25lIn0.forged.'], ['x_gatehouse_client', 'admin']] },
  },
  {
    title: 'The same forged header, with gatehouse wired in as ext_authz instead (deploy/istio/envoyfilter-ext-authz.yaml)',
    why: 'one chain serves both Envoy filters: the Check answer tells Envoy to remove x-passport (sanitize) and add x-gateway (headers)',
    via: 'ext_authz',
    request: { method: 'GET', path: '/api/orders', authority: 'api.example.com', headers: [['x-passport', 'eyJhbGciOiJub25lIn0.forged.']] },
  },
  {
    title: 'An unmatched path over ext_authz',
    why: 'the denial carries the same reason code and decision id as over ext_proc',
    via: 'ext_authz',
    request: { method: 'DELETE', path: '/internal/users/42', authority: 'api.example.com', headers: [['x-request-id', 'demo-unmatched-2']] },
    showResponseHeaders: ['x-gatehouse-reason', 'x-gatehouse-decision-id'],
  },
];

function headerDiff(sent: readonly Pair[], seen: readonly Pair[]): { added: Pair[]; removed: Pair[] } {
  const key = ([n, v]: Pair) => `${n}\u0000${v}`;
  const sentKeys = new Set(sent.map(key));
  const seenKeys = new Set(seen.map(key));
  // headers Envoy itself adds on the way (x-forwarded-*, x-request-id, x-envoy-*) are not gatehouse's doing
  const envoyOwn = (n: string) => (n.startsWith('x-forwarded') && n !== 'x-forwarded-client-cert') || n.startsWith('x-envoy') || n === 'x-request-id' || n === 'content-length' || n === 'host' || n === 'transfer-encoding';
  return {
    added: seen.filter((p) => !sentKeys.has(key(p)) && !envoyOwn(p[0])),
    removed: sent.filter((p) => !seenKeys.has(key(p)) && !envoyOwn(p[0])),
  };
}

/** Several requests in a row: the upstream failing, then the breaker answering for it. */
async function breakerScenario(envoy: ExtProcStandIn, n: number): Promise<void> {
  console.log(bold(`${n}. The transfers backend fails: its breaker opens, cards stay served (route payments)`) + dim('  [ext_proc]'));
  console.log(dim('   breaker per feature: 3 upstream failures open transfers\' breaker; then gatehouse answers 503 at once, before any upstream work'));
  for (const [i, path] of ['/api/payments/transfers/1', '/api/payments/transfers/2', '/api/payments/transfers/3', '/api/payments/transfers/4', '/api/payments/cards/9'].entries()) {
    const r = await envoy.request({ method: 'POST', path, authority: 'api.example.com', headers: [['x-request-id', `demo-breaker-${i + 1}`]] });
    const reason = r.headers.find(([k]) => k === 'x-gatehouse-reason')?.[1];
    const retryAfter = r.headers.find(([k]) => k === 'retry-after')?.[1];
    const who = reason === undefined ? `from the upstream${r.upstreamRequest ? '' : ' (?)'}` : `from gatehouse: ${reason}, retry-after ${retryAfter ?? '-'} s, upstream never reached`;
    const status = String(r.status);
    console.log(`   client  → POST ${path}   ← ${r.status < 400 ? green(status) : red(status)} ${dim(who)}`);
  }
  console.log('');
}

/** One line of a gatehouse answer: status, and the reason code or what the body says. */
function answerLine(what: string, answer: GatewayAnswer, summary: (body: Record<string, unknown>) => string = (b) => JSON.stringify(b)): string {
  const status = String(answer.status);
  const reason = answer.headers.find(([k]) => k === 'x-gatehouse-reason')?.[1];
  const said = reason === undefined ? summary(json(answer)) : `${reason}${answer.headers.some(([k]) => k === 'allow') ? `, allow: ${answer.headers.find(([k]) => k === 'allow')?.[1] ?? ''}` : ''}`;
  return `   ${what.padEnd(58)} ← ${answer.status < 400 ? green(status) : red(status)} ${dim(said)}`;
}

const abbreviated = (token: unknown): string => (typeof token === 'string' ? `${token.slice(0, 28)}… (${token.length} chars)` : '?');

/** The device endpoints: an app enrolls with its login token and a verdict, gets a credential, signs with it; and what is refused. */
async function issuanceScenario(envoy: ExtProcStandIn, gatehouse: RunningGatehouse, n: number): Promise<void> {
  console.log(bold(`${n}. Device enrollment and credentials (route device-endpoints, filter issuance)`) + dim('  [ext_proc]'));
  console.log(dim('   gatehouse answers POST /gatehouse/v1/device/{challenge,enroll,credential} itself; the enrolling account is the login token\'s sub'));
  console.log(dim('   (dev-only identity provider and attestation service keys in config/); the signed routes trust the keys the credential is signed with'));
  const actors = devActors();
  const app = deviceApp(envoy, DEV_DEVICE_BASE_PATH);
  const device = await generateSigner('ecdsa-p256-sha256');
  const enroll = await app.challenge('enroll');
  console.log(answerLine('app → challenge {"purpose":"enroll"}', enroll.answer, (b) => `challenge ${abbreviated(b['challenge'])}, expires in ${Number(b['expiresAt']) - Math.floor(Date.now() / 1000)} s`));
  const token = await actors.login('user-42');
  const body = await app.enrollmentBody(enroll.challenge, device, actors.attest, token);
  console.log(answerLine('app → enroll without a login token', await app.enroll(body, undefined)));
  console.log(answerLine('app → enroll with a login token from another issuer', await app.enroll(body, await loginToken({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, kid: 'x', alg: 'ES256' }, { issuer: 'https://evil.invalid', audience: DEV_LOGIN.audience, subject: 'user-42' }))));
  const forged = await app.enrollmentBody(enroll.challenge, await generateSigner('ecdsa-p256-sha256'), actors.attest, token);
  console.log(answerLine('app → enroll, proof signed by another key', await app.enroll({ ...body, proof: forged.proof }, token)));
  // the proof's ath is the hash of user-42's token: seen in transit and re-posted by another account, it enrolls nothing
  console.log(answerLine('attacker → user-42\'s enrollment body, own login token', await app.enroll(body, await actors.login('mallory'))));
  console.log(answerLine('app → enroll (login token of user-42, verdict strong)', await app.enroll(body, token)));
  console.log(answerLine('the same enrollment again (challenge reused)', await app.enroll(body, token)));
  const ephemeral = await generateSigner('ed25519');
  const credentialChallenge = await app.challenge('credential');
  console.log(answerLine('app → challenge {"purpose":"credential"}', credentialChallenge.answer, (b) => `challenge ${abbreviated(b['challenge'])}`));
  const issued = await app.credential(credentialChallenge.challenge, device, ephemeral);
  console.log(answerLine('app → credential (device key signs challenge + new key)', issued, (b) => `credential ${abbreviated(b['credential'])}, valid ${Number(b['expiresAt']) - Math.floor(Date.now() / 1000)} s`));
  console.log(answerLine('the same credential request again', await app.credential(credentialChallenge.challenge, device, ephemeral)));
  const credential = json(issued)['credential'] as string;
  const [header = ''] = credential.split('.');
  console.log(`      credential header ${Buffer.from(header, 'base64url').toString()}`);
  const payload = '{"amount":"5.00","currency":"KRW","to":"acct-3"}';
  const signed = await signRequest({ method: 'POST', authority: 'api.example.com', path: '/api/v1/transfers', body: Buffer.from(payload) }, { credential, signer: ephemeral, now: Math.floor(Date.now() / 1000) });
  const paid = await envoy.request({ method: 'POST', path: '/api/v1/transfers', authority: 'api.example.com', headers: [...Object.entries(signed), ['content-type', 'application/json']], body: payload });
  console.log(`   ${'app → POST /api/v1/transfers signed under it'.padEnd(58)} ← ${paid.status < 400 ? green(String(paid.status)) : red(String(paid.status))} ${dim(paid.upstreamRequest ? `upstream got ${paid.upstreamRequest.body.toString()}` : 'upstream never reached')}`);
  await gatehouse.deps.stores.devices.revoke(await jwkThumbprint(device.publicJwk), Date.now());
  console.log(answerLine('the device revoked, a new credential request', await app.credential((await app.challenge('credential')).challenge, device, ephemeral)));
  console.log(answerLine('GET /gatehouse/v1/device/challenge', await envoy.request({ method: 'GET', path: '/gatehouse/v1/device/challenge', authority: 'api.example.com' })));
  console.log(answerLine('challenge as text/plain', await envoy.request(post('/gatehouse/v1/device/challenge', 'text/plain', '{"purpose":"enroll"}'))));
  console.log('');
}

/** Dynamic security through the gateway: a signed request passes once; its replay and a tampered copy are refused. */
async function signedScenario(envoy: ExtProcStandIn, n: number): Promise<void> {
  console.log(bold(`${n}. Signed requests (route transfers-signed, filter signed)`) + dim('  [ext_proc]'));
  console.log(dim('   RFC 9421 signature by a short-lived key bound to a credential the app got from the device endpoints; the nonce is single use'));
  // An account of its own: the replay and the tampered copy are security events that the dev
  // config's disable rule counts (3 in 60 s), and the passport scenario's user-42 must stay enabled.
  const app = await devSignedApp(envoy, 'user-9');
  const body = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
  const signed = await app.sign({ method: 'POST', authority: 'api.example.com', path: '/api/v1/transfers', body: Buffer.from(body) });
  const request: ClientRequest = { method: 'POST', path: '/api/v1/transfers', authority: 'api.example.com', headers: [...Object.entries(signed), ['content-type', 'application/json']], body };
  const tries: [string, ClientRequest][] = [
    ['signed by the app', request],
    ['the same request replayed', request],
    ['tampered: amount changed in transit', { ...request, body: body.replace('10.00', '9999.00') }],
  ];
  for (const [what, r] of tries) {
    const answer = await envoy.request(r);
    const reason = answer.headers.find(([k]) => k === 'x-gatehouse-reason')?.[1];
    const status = String(answer.status);
    const outcome = answer.upstreamRequest ? `upstream got body ${answer.upstreamRequest.body.toString()}` : `${reason ?? '?'}, upstream never reached`;
    console.log(`   ${what.padEnd(38)} ← ${answer.status < 400 ? green(status) : red(status)} ${dim(outcome)}`);
  }
  console.log('');
}

/** `abcdef…(n bytes)`: enough of the bytes to see they are not the plaintext */
const shortHex = (bytes: Buffer): string => `${bytes.subarray(0, 24).toString('hex')}… (${bytes.length} bytes)`;

/** What many frameworks add to an answer: an ETag and a Content-Digest, both over the (plaintext) body. */
function withBodyDigests(response: UpstreamResponse): UpstreamResponse {
  const body = Buffer.from(typeof response.body === 'string' ? response.body : '');
  return {
    ...response,
    headers: [...(response.headers ?? []), ['etag', `"${createHash('sha1').update(body).digest('hex')}"`], ['content-digest', `sha-256=:${createHash('sha256').update(body).digest('base64')}:`]],
  };
}

/** End-to-end encryption through the gateway: the app seals, the upstream reads plaintext, the app opens the answer; a tampered body is refused. */
async function e2eeScenario(envoy: ExtProcStandIn, gatehouse: RunningGatehouse, n: number): Promise<void> {
  console.log(bold(`${n}. End-to-end encrypted bodies (routes e2ee-keys and transfers-e2ee, filters e2eeKeys and e2ee)`) + dim('  [ext_proc]'));
  console.log(dim('   the app fetches the key configurations through the gateway, seals the body (HPKE mode_auth, bound to POST /api/v1/e2ee/transfers);'));
  console.log(dim('   gatehouse opens it with the device\'s enrolled key (dev-only gateway key 7), the upstream reads plaintext, the answer is sealed back'));
  const keys = await envoy.request({ method: 'GET', path: '/.well-known/gatehouse-e2ee-keys', authority: 'api.example.com' });
  console.log(`   app fetched GET /.well-known/gatehouse-e2ee-keys ← ${keys.status} ${keys.headers.find(([k]) => k === 'content-type')?.[1] ?? '?'}, ${shortHex(keys.body)}`);
  const deviceKey = generateDeviceKey();
  const device = enrolledDevice({ e2eePublicKey: new Uint8Array(deviceKey.publicKey) });
  await gatehouse.deps.stores.devices.put(device);
  const made = createE2eeClient({ keyConfigs: keys.body, deviceKeyId: device.deviceId, devicePrivateKey: deviceKey.privateKey, audience: 'api.example.com' });
  if (!made.ok) throw new Error(`e2ee client: ${made.code}`);
  const body = '{"amount":"12.34","currency":"EUR","to":"acct-9"}';
  const sealed = made.client.encryptRequest({ method: 'POST', path: '/api/v1/e2ee/transfers', body: Buffer.from(body), contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`e2ee seal: ${sealed.code}`);
  const request: ClientRequest = { method: 'POST', path: '/api/v1/e2ee/transfers', authority: 'api.example.com', headers: [['content-type', sealed.headers['content-type']]], body: sealed.body };
  console.log(`   app     → POST /api/v1/e2ee/transfers  ${sealed.headers['content-type']}  ${shortHex(sealed.body)}`);
  const accepted = await envoy.request(request);
  const up = accepted.upstreamRequest;
  console.log(`   upstream saw ${up ? `${up.headers.find(([k]) => k === 'content-type')?.[1] ?? '-'}  ${up.body.toString()}` : dim('nothing')}`);
  const contentType = accepted.headers.find(([k]) => k === 'content-type')?.[1];
  console.log(`   app     ← ${accepted.status < 400 ? green(String(accepted.status)) : red(String(accepted.status))} ${contentType ?? '-'}  ${shortHex(accepted.body)}`);
  const opened = sealed.decryptResponse({ contentType, body: accepted.body });
  const echoed = opened.ok ? (JSON.parse(opened.plaintext.toString()) as { body?: string }).body : undefined;
  console.log(`   app decrypted ${opened.ok ? `(${opened.contentType ?? 'no type'}) the echo upstream's answer, whose body is ${echoed ?? '?'}` : red(opened.code)}`);
  // the upstream's ETag and Content-Digest describe the plaintext: on a sealed answer they are removed
  const derived = accepted.headers.filter(([k]) => ['etag', 'content-digest', 'repr-digest', 'content-md5', 'digest'].includes(k)).map(([k]) => k);
  console.log(`   upstream answered with etag + content-digest (over the plaintext); the app got ${derived.length === 0 ? green('neither (sealed: removed)') : red(derived.join(', '))}, content-length ${accepted.headers.find(([k]) => k === 'content-length')?.[1] ?? '-'} (the sealed bytes)`);
  const tampered = Buffer.from(sealed.body);
  tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 0x01;
  const refused = await envoy.request({ ...request, body: tampered });
  const reason = refused.headers.find(([k]) => k === 'x-gatehouse-reason')?.[1];
  console.log(`   one ciphertext bit flipped in transit   ← ${red(String(refused.status))} ${dim(`${reason ?? '?'}, ${refused.upstreamRequest ? 'upstream reached (?)' : 'upstream never reached'}`)}`);
  console.log('');
}

/** The passport: a signed request's upstream gets x-passport (a client's own is replaced) and verifies it against the gateway's JWKS. */
async function passportScenario(envoy: ExtProcStandIn, n: number): Promise<void> {
  console.log(bold(`${n}. Passport for the upstream (routes passport-keys and transfers-passport, filters signed and passport)`) + dim('  [ext_proc]'));
  console.log(dim('   the verified user and device, signed by gatehouse (dev-only key) for the payments service; the upstream verifies it with sdk/upstream'));
  const app = await devSignedApp(envoy);
  const body = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
  const signed = await app.sign({ method: 'POST', authority: 'api.example.com', path: '/api/v1/passport/transfers', body: Buffer.from(body) });
  const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.';
  const answer = await envoy.request({
    method: 'POST',
    path: '/api/v1/passport/transfers',
    authority: 'api.example.com',
    headers: [...Object.entries(signed), ['content-type', 'application/json'], ['x-passport', forged], ['x-request-id', 'demo-passport-1']],
    body,
  });
  const passports = (answer.upstreamRequest?.headers ?? []).filter(([k]) => k === 'x-passport').map(([, v]) => v);
  console.log(`   app sent its own x-passport ${dim(forged)}   ← ${answer.status < 400 ? green(String(answer.status)) : red(String(answer.status))}`);
  const passport = passports[0];
  if (passports.length !== 1 || passport === undefined || passport === forged) {
    console.log(red(`   upstream saw ${passports.length} x-passport header(s): not the one passport expected`));
    return;
  }
  const [header = '', payload = ''] = passport.split('.');
  console.log(`   upstream saw x-passport ${passport.slice(0, 40)}… (${passport.length} chars), the app's is gone`);
  console.log(`      header  ${Buffer.from(header, 'base64url').toString()}`);
  console.log(`      payload ${Buffer.from(payload, 'base64url').toString()}`);
  const verifier = createPassportVerifier({
    audience: 'payments',
    issuer: 'https://gatehouse.dev.invalid/passport',
    fetchJwks: async () => JSON.parse((await envoy.request({ method: 'GET', path: '/.well-known/gatehouse-passport-jwks.json', authority: 'api.example.com' })).body.toString()) as unknown,
  });
  const verdict = await verifier.verifyPassport(passport);
  console.log(`   upstream verifyPassport() with the JWKS from GET /.well-known/gatehouse-passport-jwks.json ← ${verdict.ok ? green(`ok, kid ${verdict.kid}`) : red(verdict.code)}`);
  console.log('');
}

/** `npm run check -- --explain`: where a path variant lands, and why, without sending anything */
function explainScenario(gatehouse: RunningGatehouse): void {
  const text = 'POST https://api.example.com/api/v1/transfers/';
  const request = parseExplainRequest(text);
  if (!request.ok) throw new Error(request.message);
  console.log(bold(`npm run check -- --explain '${text}'`));
  console.log(dim('   which route a request lands on, why, its filter chain and what each filter needs'));
  for (const line of explainRequest(gatehouse.routes.current(), request)) console.log(`   ${line}`);
  console.log('');
}

async function main(): Promise<void> {
  const loaded = loadConfig({ registry: FILTER_REGISTRY, env: { ...process.env, GATEHOUSE_CONFIG: '', GATEHOUSE_GRPC_LISTEN: '127.0.0.1:0', GATEHOUSE_ADMIN_LISTEN: '127.0.0.1:0', GATEHOUSE_LOG_LEVEL: 'silent' } });
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.format()).join('\n'));
  const gatehouse = await startGatehouse({ config: loaded.config, runtimeMetrics: false });
  // the echo upstream, except that the demo's transfers backend is down (for the breaker scenario)
  const upstream = await startUpstream((req) =>
    req.path.startsWith('/api/payments/transfers/') ? { status: 503, headers: [['content-type', 'text/plain']], body: 'transfers backend unavailable' } : withBodyDigests(echoResponse(req)),
  );
  const envoy = new ExtProcStandIn({ processorAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtProcConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });
  const envoyAuthz = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtAuthzConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });

  const certificates = demoCertificates();
  console.log(bold('gatehouse demo'));
  console.log(dim(`gatehouse ${loaded.file} on 127.0.0.1:${gatehouse.grpcPort}, Envoy stand-in with deploy/istio/envoyfilter-ext-proc.yaml, echo upstream on 127.0.0.1:${upstream.port}\n`));
  let n = 0;
  for (const scenario of SCENARIOS) {
    n++;
    const tls = scenario.clientCertificate === undefined ? {} : { peerCertificate: certificates[scenario.clientCertificate] };
    const r = scenario.via === 'ext_authz' ? await envoyAuthz.request(scenario.request, tls) : await envoy.request(scenario.request, tls);
    const allowed = r.upstreamRequest !== undefined;
    console.log(bold(`${n}. ${scenario.title}`) + dim(`  [${scenario.via ?? 'ext_proc'}]`));
    console.log(dim(`   ${scenario.why}`));
    console.log(`   client  → ${scenario.request.method} ${scenario.request.path}${scenario.request.body ? `  body ${String(scenario.request.body)}` : ''}`);
    const statusText = `${r.status}`;
    console.log(`   client  ← ${allowed ? green(statusText) : red(statusText)}${r.details ? dim(`  (${r.details})`) : ''}`);
    for (const name of scenario.showResponseHeaders ?? []) {
      const v = r.headers.find(([k]) => k === name)?.[1];
      if (v !== undefined) console.log(`              ${name}: ${v}`);
    }
    if (!allowed) console.log(`              body: ${r.body.toString('utf8')}`);
    if (scenario.showDecision === true) console.log(`   Envoy's access log: ${JSON.stringify(r.dynamicMetadata['gatehouse'] ?? {})}`);
    if (r.upstreamRequest) {
      const { added, removed } = headerDiff(scenario.request.headers ?? [], r.upstreamRequest.headers);
      console.log(`   upstream saw ${r.upstreamRequest.method} ${r.upstreamRequest.path}`);
      for (const [k, v] of added) console.log(green(`              + ${k}: ${v}`));
      for (const [k, v] of removed) console.log(red(`              - ${k}: ${v}`));
      if (r.upstreamRequest.body.length > 0) console.log(`              body: ${r.upstreamRequest.body.toString('utf8')}`);
    } else {
      console.log(`   upstream ${dim('never reached')}`);
    }
    console.log('');
  }
  explainScenario(gatehouse);
  await breakerScenario(envoy, n + 1);
  await issuanceScenario(envoy, gatehouse, n + 2);
  await signedScenario(envoy, n + 3);
  await e2eeScenario(envoy, gatehouse, n + 4);
  await passportScenario(envoy, n + 5);
  const token = loaded.config.admin === undefined ? undefined : readToken(loaded.config.admin.tokenFile);
  if (token?.ok === true) await fraudScenario(envoy, gatehouse, token.token, n + 6, console.log);
  await operationsScenario(n + 7, console.log);
  await protocolScenarios(console.log);
  certificates.close();
  envoy.close();
  envoyAuthz.close();
  await upstream.close();
  await gatehouse.stop(500);
}

await main();
