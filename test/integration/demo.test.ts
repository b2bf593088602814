// Keeps `npm run demo`'s protocol scenarios honest: run them with a collecting print and check that
// each accepted case says accepted and each refused case shows its expected code and status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protocolScenarios } from '../../demo/protocol.js';
import { fraudScenario } from '../../demo/fraud.js';
import { operationsScenario } from '../../demo/operations.js';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/config/load.js';
import { loadConfig } from '../support/config.js';
import { startGatehouse } from '../../src/gatehouse.js';
import { readToken } from '../../src/security/admin.js';
import { ExtProcStandIn } from '../harness/ext-proc.js';
import { startUpstream } from '../harness/upstream.js';
import { shippedExtProcConfig } from '../support/manifests.js';

// eslint-disable-next-line no-control-regex
const plain = (line: string): string => line.replace(/\x1b\[[0-9;]*m/g, '');

test('demo protocol scenarios: accepted cases accepted, refused cases with their codes', async () => {
  const lines: string[] = [];
  const started = performance.now();
  await protocolScenarios((line) => lines.push(plain(line)));
  assert.ok(performance.now() - started < 5000, 'the protocol scenarios stay fast');

  /** The verdict lines (✓ or ✗) of the scenario whose title starts with `prefix`, up to the next title. */
  const verdictsUnder = (prefix: string): string[] => {
    const at = lines.findIndex((l) => l.startsWith(prefix));
    assert.notEqual(at, -1, `no scenario titled ${prefix}`);
    const out: string[] = [];
    for (const line of lines.slice(at + 1)) {
      if (/^[A-C]\d\. /.test(line) || line.startsWith('Protocol ')) break;
      if (line.includes('✓') || line.includes('✗')) out.push(line.trim());
    }
    return out;
  };

  const expectations: [string, RegExp[]][] = [
    ['A1.', [/^gatehouse ✓ accepted {2}enrolled device .* for user-42, integrity strong$/, /^gatehouse ✓ accepted {2}credential /]],
    ['A2.', [/^gatehouse ✓ accepted {2}identity user-42, device .*, key id .*, nonce .* → replay store$/]],
    ['A3.', [/^gatehouse ✗ refused digest_mismatch \(400\)$/]],
    ['A4.', [/^gatehouse ✗ refused signature_stale \(401\)$/]],
    ['A5.', [/^gatehouse ✗ refused credential_wrong_device \(401\)$/]],
    ['A6.', [/^gatehouse ✗ refused signature_invalid \(401\)$/]],
    ['A7.', [/^gatehouse ✓ accepted {2}identity user-42, device (\S+), key id .* → replay store$/, /^gatehouse ✓ accepted {2}opened, authenticated device \S+ = the credential's device; upstream gets \{"amount":1000,"to":"110-222-333"\}$/]],
    ['A8.', [/^gatehouse ✗ refused e2ee_decrypt_failed \(400\)$/]],
    ['A9.', [
      /^android: key in the TEE, .* ✓ accepted {2}integrity device, app com\.example\.superapp$/,
      /^android: key in StrongBox .* ✓ accepted {2}integrity strong, /,
      /^android: bootloader unlocked .* ✓ accepted {2}integrity basic, /,
      /^android: the chain of another enrollment's challenge .* ✗ refused attestation_invalid \(403\) .*attestationChallenge/,
      /^android: a repackaged app .* ✗ refused attestation_invalid \(403\) .*not allowed/,
      /^android: a chain for another key .* ✗ refused attestation_invalid \(403\) .*not the enrolled device key/,
      /^ios: App Attest \(production\).* ✓ accepted {2}integrity strong, app A1B2C3D4E5\.com\.example\.superapp$/,
      /^ios: the development App Attest environment .* ✗ refused attestation_invalid \(403\) .*development/,
      /^ios: attested for another app .* ✗ refused attestation_invalid \(403\) .*rpIdHash/,
      /^ios: committed to another device key .* ✗ refused attestation_invalid \(403\) .*nonce/,
    ]],
    ['B1.', [/^gatehouse ✓ accepted {2}device dev-01HZX3 \(authenticated\), gateway key 7$/, /^app ✓ accepted {2}decrypted response \(application\/json\): \{"status":"accepted","id":"tr_123"\}$/]],
    ['B2.', [/^gatehouse ✗ refused e2ee_decrypt_failed \(400\)$/]],
    ['B3.', [/^gatehouse ✗ refused e2ee_decrypt_failed \(400\)$/]],
    ['C1.', [/^upstream ✓ accepted {2}verifyPassport\(\): sub user-42, aud payments, txn req-01JDX6T2K9, /]],
    ['C2.', [/^upstream ✗ refused expired \(401\)$/]],
    ['C3.', [/^upstream ✗ refused wrong_audience \(401\)$/]],
    ['C4.', [/^upstream ✗ refused unknown_kid \(401\)$/]],
  ];
  for (const [prefix, patterns] of expectations) {
    const verdicts = verdictsUnder(prefix);
    assert.equal(verdicts.length, patterns.length, `${prefix}: ${JSON.stringify(verdicts)}`);
    patterns.forEach((pattern, i) => {
      assert.match(verdicts[i] ?? '', pattern, prefix);
    });
  }
  // the plaintext gatehouse hands the upstream, and the abbreviated signing headers
  assert.ok(lines.some((l) => l.includes('for the upstream: {"amount":"12.34","currency":"EUR","to":"acct-9"}')));
  assert.ok(lines.some((l) => /signature-input: sig=\(.*\);created=\d+;expires=\d+;nonce=".*…";keyid=".*…"/.test(l)));
  assert.ok(lines.some((l) => /content-digest: sha-256=:.*…:$/.test(l)));
});

test('demo fraud scenario on the dev config: replays and tampering never disable the account; a revoked phone that keeps signing does; the admin API re-enables it', async (t) => {
  const loaded = loadConfig({ env: { ...process.env, GATEHOUSE_CONFIG: '', GATEHOUSE_GRPC_LISTEN: '127.0.0.1:0', GATEHOUSE_ADMIN_LISTEN: '127.0.0.1:0', GATEHOUSE_LOG_LEVEL: 'silent' } });
  assert.ok(loaded.ok);
  const token = loaded.config.admin === undefined ? undefined : readToken(loaded.config.admin.tokenFile);
  assert.ok(token?.ok === true, 'the dev config has an admin token file');
  const gatehouse = await startGatehouse({ config: loaded.config, runtimeMetrics: false });
  const upstream = await startUpstream();
  const envoy = new ExtProcStandIn({ processorAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtProcConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });
  t.after(async () => {
    envoy.close();
    await upstream.close();
    await gatehouse.stop(200);
  });
  const lines: string[] = [];
  await fraudScenario(envoy, gatehouse, token.token, 1, (line) => lines.push(plain(line)));
  const answers = lines.filter((l) => l.includes('← ')).map((l) => l.replace(/\s+/g, ' ').trim());
  const expected = [
    /^user-7 signs a transfer ← 200 upstream reached$/,
    /^the same request replayed ← 401 signature_replayed/,
    /^amount changed in transit \(1\) ← 400 digest_mismatch/,
    /^amount changed in transit \(2\) ← 400 digest_mismatch/,
    /^GET \/admin\/accounts\?subject=user-7 ← 200 enabled$/,
    /^a genuine request now ← 200 upstream reached$/,
    /^POST \/admin\/devices\/revoke with the dev token ← 200 revoked=true revokedAt=\d{4}-/,
    /^GET \/admin\/devices\?id=… ← 200 subject=user-7 integrity=\w+ revoked=true$/,
    /^the stolen phone signs a transfer \(1\) ← 403 device_revoked/,
    /^the stolen phone signs a transfer \(2\) ← 403 device_revoked/,
    /^the stolen phone signs a transfer \(3\) ← 403 device_revoked/,
    /^GET \/admin\/accounts\?subject=user-7 ← 200 disabled by gatehouse-rule:revoked-device: /,
    /^user-7's own phone now ← 403 account_disabled/,
    /^POST \/admin\/accounts\/enable without the token ← 401 unauthorized$/,
    /^POST \/admin\/accounts\/enable with the dev token ← 200 /,
    /^a genuine request after re-enabling ← 200 upstream reached$/,
    /^the stolen phone again ← 403 device_revoked/,
  ];
  assert.equal(answers.length, expected.length, answers.join('\n'));
  expected.forEach((pattern, i) => { assert.match(answers[i]!, pattern); });
  const events = lines.filter((l) => l.includes('security_event code=')).map((l) => /code=(\S+) .*trust=(\S+)/.exec(l)?.slice(1).join(' '));
  assert.deepEqual(events, ['signature_replayed credential', 'digest_mismatch credential', 'digest_mismatch credential', 'device_revoked verified', 'device_revoked verified', 'device_revoked verified']);
});

test('demo operations scenario: the API only on its own listener, ECS fields, the new metrics, npm run check refusing GTE', async () => {
  const lines: string[] = [];
  const check = [process.execPath, '--import', 'tsx', join(findPackageRoot(), 'src/main.ts')];
  await operationsScenario(1, (line) => lines.push(plain(line)), check);
  const text = lines.join('\n');
  assert.match(text, /GET \/metrics +on the metrics listener ← 200 +on the API listener ← 404/);
  assert.match(text, /GET \/admin\/accounts +on the metrics listener ← 404 +on the API listener ← 200/);
  assert.match(text, /without the token ← 401/);
  assert.match(text, /ECS access line \(demo-ops-allowed\): @timestamp="[^"]+" .*trace\.id="4bf92f3577b34da6a3ce929d0e0e4736" url\.path="\/api\/v1\/accounts\/42" .*http\.response\.status_code=200/);
  assert.match(text, /ECS access line \(demo-ops-refused\): .*gatehouse\.reason="route_not_found"/);
  assert.match(text, /gatehouse_store_up\{kind="memory"\} 1/);
  assert.match(text, /gatehouse_admin_api_calls_total\{action="accounts\.get",result="unauthorized"\} 1/);
  assert.match(text, /npm run check .*← exit 2\n.*\n.*match\.methods\[0\]: GTE is not an HTTP method/);
});
