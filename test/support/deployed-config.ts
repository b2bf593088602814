// gatehouse's config file as a deployment ships it (a ConfigMap's text), parsed and checked as
// `--check` would in the pod: the production key files it names are stood in for by the
// repository's dev-only ones (same formats) in a temporary directory.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkFiles, findPackageRoot } from '../../src/config/load.js';
import { parseConfig } from './config.js';
import { checkConfig } from '../../src/check.js';

const ROOT = findPackageRoot();
/** where the chart mounts the mtls client registry ConfigMap */
export const CLIENTS_DIR = '/etc/gatehouse-clients';

// Production key files mapped onto the repository's dev-only ones: same formats, so gatehouse's
// own parser and --check can read them here (the shipped text names none of them).
export const SECRETS_DIR = '/var/run/secrets/gatehouse';
const STAND_INS: Record<string, string> = {
  'keys/challenge-secrets.hex': 'challenge-secret.dev-only.hex',
  'keys/credential-issuer-keys.json': 'credential-issuer-keys.dev-only.json',
  'keys/login-idp.jwks.json': 'login-idp.dev-only.jwks.json',
  'keys/attestation-service.jwks.json': 'attestation-service.dev-only.jwks.json',
  'keys/e2ee-gateway-1.key': 'e2ee-gateway-7.dev-only.key',
  'keys/passport-keys.json': 'passport-keys.dev-only.json',
  'admin/token': 'admin-token.dev-only.txt',
};

/** The shipped config parsed and checked as `--check` would, its secret files stood in for in a temp dir. */
export function parseShipped(text: string, clientsYaml?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-k8s-'));
  try {
    for (const key of secretFiles(text)) {
      const target = join(dir, key);
      mkdirSync(dirname(target), { recursive: true });
      const standIn = STAND_INS[key];
      if (!standIn) {
        writeFileSync(target, 'stand-in\n');
        continue;
      }
      copyFileSync(join(ROOT, 'config', standIn), target);
      // a key list names its PEM files relative to itself: they ride in the same Secret
      if (standIn.endsWith('keys.dev-only.json')) {
        const list = JSON.parse(readFileSync(target, 'utf8')) as { keys: { file: string }[] };
        for (const k of list.keys) copyFileSync(join(ROOT, 'config', k.file), join(dirname(target), k.file));
      }
    }
    if (clientsYaml !== undefined) {
      mkdirSync(join(dir, 'clients'));
      writeFileSync(join(dir, 'clients/clients.yaml'), clientsYaml);
    }
    const file = join(dir, 'gatehouse.yaml');
    const parsed = parseConfig(text.replaceAll(`${SECRETS_DIR}/`, `${dir}/`).replaceAll(`${CLIENTS_DIR}/`, `${dir}/clients/`), file);
    if (!parsed.ok) return { parsed, files: [], check: undefined };
    return { parsed, files: checkFiles(parsed.config).map((e) => e.format()), check: checkConfig(parsed.config) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every `<secrets dir>/<volume>/<key>` the config text names, as `<volume>/<key>`. */
export function secretFiles(text: string): string[] {
  return [...new Set([...text.matchAll(new RegExp(`${SECRETS_DIR}/([\\w./-]+)`, 'g'))].map((m) => m[1]!))];
}

