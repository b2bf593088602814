// Attack corpus, mtls revocation (issue 21, class 7): a revoked certificate is refused whatever the
// spelling of its fingerprint, and a registry with revocations refuses a certificate whose fingerprint
// is missing (it could be a revoked one). Over ext_proc and ext_authz, on a route that trusts the
// mesh's x-forwarded-client-cert (where a proxy in between writes the Hash).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { get } from '../harness/helpers.js';
import { createTestCa } from '../support/certificates.js';
import { endToEnd } from '../support/gatehouse.js';

const ca = createTestCa();
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-attack-mtls-'));
after(() => {
  ca.close();
  rmSync(dir, { recursive: true, force: true });
});

const URI = 'spiffe://partners.example.com/acme';
const revoked = ca.issue({ subject: '/O=Acme/CN=acme-old', uri: URI });
const current = ca.issue({ subject: '/O=Acme/CN=acme', uri: URI });
const clientsFile = join(dir, 'clients.yaml');
writeFileSync(clientsFile, `clients:\n  - id: acme\n    match: { uri: ${URI} }\n    routes: [mesh]\nrevokedFingerprints: ["${revoked.facts.sha256}"]\n`);

const CONFIG = `
mtls: { clientsFile: ${clientsFile} }
routes:
  - id: mesh
    match: { path: { prefix: /mesh/ } }
    filters:
      - sanitize: { trustForwardedClientCert: true }
      - mtls: { trustForwardedClientCert: true }
`;

const colons = (hex: string): string => hex.toUpperCase().match(/../g)!.join(':');

for (const via of ['ext_proc', 'ext_authz'] as const) {
  test(`over ${via}: revoked in any spelling → 403 client_certificate_revoked; no fingerprint → 403 client_fingerprint_missing; the current one passes`, async (t) => {
    const e2e = await endToEnd(t, CONFIG);
    const cases: [string, number, string | undefined][] = [
      [`Hash=${revoked.facts.sha256};URI=${URI}`, 403, 'client_certificate_revoked'],
      [`Hash=${revoked.facts.sha256.toUpperCase()};URI=${URI}`, 403, 'client_certificate_revoked'],
      [`Hash=${colons(revoked.facts.sha256)};URI=${URI}`, 403, 'client_certificate_revoked'],
      [`URI=${URI}`, 403, 'client_fingerprint_missing'],
      [`Hash=;URI=${URI}`, 403, 'client_fingerprint_missing'],
      [`Hash=${colons(current.facts.sha256)};URI=${URI}`, 200, undefined],
    ];
    for (const [xfcc, status, reason] of cases) {
      const request = { method: 'GET', path: '/mesh/x', authority: 'api.example.com', headers: [['x-forwarded-client-cert', xfcc]] as [string, string][] };
      const r = via === 'ext_proc' ? await e2e.envoy.request(request) : await e2e.authz.request(request);
      assert.equal(r.status, status, xfcc);
      assert.equal(get(r.headers, 'x-gatehouse-reason'), reason, xfcc);
      if (status !== 200) assert.equal(r.upstreamRequest, undefined, xfcc);
      else assert.equal(get(r.upstreamRequest!.headers, 'x-gatehouse-client'), 'acme');
    }
  });
}
