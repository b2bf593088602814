// The issuance filter's config: every file it names is read at load, and a problem names the config
// file, the line, the field and the file at fault; keys it must not hold are refused.
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK } from 'jose';
import { parseConfig } from '../../../test/support/config.js';
import { buildCertificate, testAttestationCa } from '../../protocol/signing/android-test-support.js';
import { appleAppAttestConfig } from './config.js';

const configErrors = (routes: string): string[] => {
  const parsed = parseConfig(`routes:\n${routes}`, 'issuance-test.yaml');
  return parsed.ok ? [] : parsed.errors.map((e) => e.format());
};

test('config errors name the file, the field and the key file: secrets, manifests, JWKS files, failureMode', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-issuance-config-'));
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuer = generateKeyPairSync('ed25519');
  const secret = file('secret.hex', `# comment\n${'0f'.repeat(32)}\n\n${'1e'.repeat(48)}\n`);
  const jwks = file('idp.json', JSON.stringify({ keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'i' }] }));
  file('issuer.pem', issuer.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  const manifest = file('keys.json', JSON.stringify({ keys: [{ kid: 'c1', status: 'active', file: 'issuer.pem' }] }));
  const entry = (overrides: Record<string, string> = {}): string => {
    const fields = {
      challengeSecretsFile: secret,
      issuer: 'https://gh.test',
      credentialKeysFile: manifest,
      login: `{ issuer: https://idp.test, audience: app, jwksFile: ${jwks}, algorithms: [ES256] }`,
      attestation: `{ issuer: https://attest.test, audience: com.app, jwksFile: ${jwks} }`,
      ...overrides,
    };
    return `  - id: device\n    match: { path: { prefix: /gatehouse/ } }\n    filters:\n      - issuance: { ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join(', ')} }\n`;
  };
  assert.deepEqual(configErrors(entry()), []);
  const signedWith = (keys: string): string => `  - id: pay\n    match: { path: { prefix: /pay/ } }\n    filters:\n      - signed: { issuer: https://gh.test, credentialKeysFile: ${keys} }\n`;
  assert.deepEqual(configErrors(signedWith(manifest)), [], 'signed takes the same manifest');

  const privateJwks = file('private.json', JSON.stringify({ keys: [{ ...(await exportJWK(idp.privateKey)), kid: 'i' }] }));
  const cases: [string, RegExp][] = [
    [entry({ challengeSecretsFile: file('short.hex', 'abcd\n') }), /issuance-test\.yaml:5: .*challengeSecretsFile.*short\.hex line 1: must be 32-128 bytes as hex/s],
    [entry({ challengeSecretsFile: file('empty.hex', '# nothing\n') }), /challengeSecretsFile.*holds no secret/s],
    [entry({ challengeSecretsFile: join(dir, 'missing.hex') }), /challengeSecretsFile.*cannot read challenge secrets file .*missing\.hex/s],
    [entry({ credentialKeysFile: file('two-active.json', JSON.stringify({ keys: [{ kid: 'a', status: 'active', file: 'issuer.pem' }, { kid: 'b', status: 'active', file: 'issuer.pem' }] })) }), /credentialKeysFile.*credential issuer keys: .*two-active\.json status: exactly one key must be "active"/s],
    [entry({ credentialKeysFile: file('no-pem.json', JSON.stringify({ keys: [{ kid: 'a', status: 'active', file: 'absent.pem' }] })) }), /credentialKeysFile.*credential issuer keys: .*absent\.pem: cannot read/s],
    [entry({ login: `{ issuer: x, audience: app, jwksFile: ${privateJwks}, algorithms: [ES256] }` }), /login\.jwksFile.*login JWKS file .*private\.json: keys\[0\] is a private key/s],
    [entry({ login: `{ issuer: x, audience: app, jwksFile: ${file('broken.json', '{')}, algorithms: [ES256] }` }), /login\.jwksFile.*broken\.json/s],
    [entry({ login: `{ issuer: x, audience: app, jwksFile: ${jwks}, algorithms: [HS256] }` }), /login\.algorithms/],
    [entry({ login: `{ issuer: x, audience: app, jwksFile: ${jwks} }` }), /login\.algorithms/],
    [entry({ attestation: `{ issuer: x, audience: app, jwksFile: ${file('nokeys.json', '{"keys": []}')} }` }), /attestation\.jwksFile.*attestation JWKS file .*nokeys\.json must be \{"keys": \[\.\.\.\]\} with at least one key/s],
    [entry({ failureMode: 'open' }), /failureMode.*must be "closed"/s],
    [entry({ challengeTtlSeconds: '301' }), /challengeTtlSeconds/],
    [entry({ basePath: '/gatehouse/' }), /basePath.*without a trailing slash/s],
    [signedWith(join(dir, 'missing.json')), /signed.*credentialKeysFile.*credential issuer keys: .*missing\.json/s],
  ];
  for (const [yaml, expected] of cases) assert.match(configErrors(yaml).join('\n'), expected, yaml);
});

test('androidKeyAttestation: roots PEM relative to the config file, allowed apps; errors name the file and field', async () => {
  const { file, parse } = await platformAttestationFixture('gatehouse-issuance-android-');
  file('roots.pem', `# the test root\n${testAttestationCa().rootPem}`);
  file('empty.pem', '# nothing here\n');
  file('broken.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const digest = 'AB:'.repeat(31) + 'AB';
  const errorsOf = (android: string): string[] => errorsIn(parse('androidKeyAttestation', android));
  const apps = `[{ packageName: com.example.superapp, signingCertSha256: ["${digest}"] }]`;
  assert.deepEqual(errorsOf(`{ rootsFile: roots.pem, apps: ${apps} }`), []);
  const cases: [string, RegExp][] = [
    [`{ rootsFile: absent.pem, apps: ${apps} }`, /gatehouse\.yaml:\d+: .*androidKeyAttestation\.rootsFile.*cannot read attestation roots file .*absent\.pem/s],
    [`{ rootsFile: empty.pem, apps: ${apps} }`, /androidKeyAttestation\.rootsFile.*empty\.pem holds no PEM certificate/s],
    [`{ rootsFile: broken.pem, apps: ${apps} }`, /androidKeyAttestation\.rootsFile.*broken\.pem: certificate 1 does not parse/s],
    [`{ rootsFile: leaf.pem, apps: ${apps} }`, /androidKeyAttestation\.rootsFile.*leaf\.pem: certificate 1 \(CN=leaf\) is not a CA certificate/s],
    [`{ rootsFile: roots.pem, apps: [] }`, /androidKeyAttestation\.apps.*must allow at least one app/s],
    [`{ rootsFile: roots.pem, apps: [{ packageName: superapp, signingCertSha256: ["${digest}"] }] }`, /androidKeyAttestation\.apps\[0\]\.packageName.*must be an Android package name/s],
    [`{ rootsFile: roots.pem, apps: [{ packageName: com.a.b, signingCertSha256: [abcd] }] }`, /androidKeyAttestation\.apps\[0\]\.signingCertSha256\[0\].*must be a SHA-256 digest/s],
    [`{ rootsFile: roots.pem, apps: [{ packageName: com.a.b, signingCertSha256: [] }] }`, /signingCertSha256.*must name at least one/s],
    [`{ rootsFile: roots.pem, apps: [{ packageName: com.a.b, signingCertSha256: ["${digest}"] }, { packageName: com.a.b, signingCertSha256: ["${digest}"] }] }`, /androidKeyAttestation\.apps.*a package name is listed twice/s],
    [`{ rootsFile: roots.pem, apps: ${apps}, strict: false }`, /androidKeyAttestation.*strict/s],
  ];
  for (const [android, expected] of cases) assert.match(errorsOf(android).join('\n'), expected, android);
});

test('appleAppAttest: roots PEM relative to the config file, allowed apps, development off by default; errors name the file and field', async () => {
  const fixture = await platformAttestationFixture('gatehouse-issuance-apple-');
  fixture.file('apple-roots.pem', `# the test root\n${testAttestationCa('Test App Attestation Root').rootPem}`);
  const parse = (apple: string) => fixture.parse('appleAppAttest', apple);
  const errorsOf = (apple: string): string[] => errorsIn(parse(apple));
  const apps = '[{ teamId: A1B2C3D4E5, bundleId: com.example.superapp }]';
  const accepted = parse(`{ rootsFile: apple-roots.pem, apps: ${apps} }`);
  assert.ok(accepted.ok, accepted.ok ? '' : accepted.errors.map((e) => e.format()).join('\n'));
  assert.equal(appleAppAttestConfig.shape.allowDevelopment.parse(undefined), false, 'development is off unless set');
  assert.deepEqual(errorsOf(`{ rootsFile: apple-roots.pem, apps: ${apps}, allowDevelopment: true }`), []);
  const cases: [string, RegExp][] = [
    [`{ rootsFile: absent.pem, apps: ${apps} }`, /gatehouse\.yaml:\d+: .*appleAppAttest\.rootsFile.*cannot read attestation roots file .*absent\.pem/s],
    [`{ rootsFile: leaf.pem, apps: ${apps} }`, /appleAppAttest\.rootsFile.*leaf\.pem: certificate 1 \(CN=leaf\) is not a CA certificate/s],
    [`{ apps: ${apps} }`, /appleAppAttest\.rootsFile/s],
    [`{ rootsFile: apple-roots.pem, apps: [] }`, /appleAppAttest\.apps.*must allow at least one app/s],
    [`{ rootsFile: apple-roots.pem, apps: [{ teamId: a1b2c3d4e5, bundleId: com.example.superapp }] }`, /appleAppAttest\.apps\[0\]\.teamId.*must be an Apple Team ID/s],
    [`{ rootsFile: apple-roots.pem, apps: [{ teamId: A1B2C3D4E5, bundleId: "superapp" }] }`, /appleAppAttest\.apps\[0\]\.bundleId.*must be a bundle identifier/s],
    [`{ rootsFile: apple-roots.pem, apps: [{ teamId: A1B2C3D4E5, bundleId: "com.example.app/x" }] }`, /appleAppAttest\.apps\[0\]\.bundleId/s],
    [`{ rootsFile: apple-roots.pem, apps: [${apps.slice(1, -1)}, ${apps.slice(1, -1)}] }`, /appleAppAttest\.apps.*an app \(teamId and bundleId\) is listed twice/s],
    [`{ rootsFile: apple-roots.pem, apps: ${apps}, allowDevelopment: "yes" }`, /appleAppAttest\.allowDevelopment/s],
    [`{ rootsFile: apple-roots.pem, apps: ${apps}, environment: production }`, /appleAppAttest.*environment/s],
  ];
  for (const [apple, expected] of cases) assert.match(errorsOf(apple).join('\n'), expected, apple);
});

/**
 * A directory with the files an issuance entry names (challenge secret, IdP JWKS, credential key
 * manifest) and a non-CA leaf.pem; parse(section, value) parses an entry with that platform
 * verifier section, its files relative to the config file in the directory.
 */
async function platformAttestationFixture(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuer = generateKeyPairSync('ed25519');
  file('secret.hex', `${'0f'.repeat(32)}\n`);
  file('idp.json', JSON.stringify({ keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'i' }] }));
  file('issuer.pem', issuer.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  file('keys.json', JSON.stringify({ keys: [{ kid: 'c1', status: 'active', file: 'issuer.pem' }] }));
  const leaf = buildCertificate({ subject: 'leaf', issuer: 'leaf', publicKey: idp.publicKey, signingKey: idp.privateKey, ca: false });
  file('leaf.pem', new X509Certificate(leaf).toString());
  const configFile = join(dir, 'gatehouse.yaml');
  const parse = (section: 'androidKeyAttestation' | 'appleAppAttest', value: string) =>
    parseConfig(
      `routes:\n  - id: device\n    match: { path: { prefix: /gatehouse/ } }\n    filters:\n      - issuance:\n          challengeSecretsFile: secret.hex\n          issuer: https://gh.test\n          credentialKeysFile: keys.json\n          login: { issuer: https://idp.test, audience: app, jwksFile: idp.json, algorithms: [ES256] }\n          attestation: { issuer: https://attest.test, audience: com.app, jwksFile: idp.json }\n          ${section}: ${value}\n`,
      configFile,
    );
  return { file, parse };
}

const errorsIn = (parsed: ReturnType<typeof parseConfig>): string[] => (parsed.ok ? [] : parsed.errors.map((e) => e.format()));
