// Test certificates made at test time with the openssl CLI (installed by .ci/run), never checked in:
// a CA and client certificates with a subject and optional URI SAN. openssl rather than a library:
// it is what operators use to make partner certificates, and two commands cover what we need.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerCertificateFacts, type PeerCertificateFacts } from '../harness/peer-certificate.js';

export interface TestCertificate {
  readonly pem: string;
  /** as Envoy exposes them (the stand-in's own reading) */
  readonly facts: PeerCertificateFacts;
}

export interface TestCa {
  issue(options: { subject: string; uri?: string }): TestCertificate;
  close(): void;
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
};

/** `subject` in openssl's `/O=Acme/CN=acme` form */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/O=Gatehouse Test/CN=test-ca']);
  let serial = 0;
  return {
    issue({ subject, uri }) {
      const name = `client${++serial}`;
      openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
      writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n${uri === undefined ? '' : `subjectAltName=URI:${uri}\n`}`);
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(1000 + serial), '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
      const pem = readFileSync(join(dir, `${name}.crt`), 'utf8');
      return { pem, facts: peerCertificateFacts(pem) };
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
