// Reading the mtls client registry file (top-level `mtls.clientsFile`): YAML and errors as the main
// config has them (file, line, field). The registry itself is the mtls filter's (filters/mtls/clients.ts).
import { readFileSync } from 'node:fs';
import { ClientRegistry, clientsFileSchema } from '../filters/mtls/clients.js';
import { configError, type ConfigError } from './errors.js';
import { issuesToErrors, type RawIssue } from './issues.js';
import { contentHash, readYaml, schemaKeys } from './load.js';

export type RegistryResult = { readonly ok: true; readonly registry: ClientRegistry; readonly hash: string } | { readonly ok: false; readonly errors: readonly ConfigError[] };

export function parseClientRegistry(text: string, fileName: string): RegistryResult {
  const expected = 'a map with clients and revokedFingerprints';
  const yaml = readYaml(text, fileName, expected);
  if (!yaml.ok) return yaml;
  if (typeof yaml.raw !== 'object' || Array.isArray(yaml.raw)) return { ok: false, errors: [configError({ file: fileName, line: 1, field: '', message: `the top level must be ${expected}` })] };
  const parsed = clientsFileSchema.safeParse(yaml.raw);
  const issues: RawIssue[] = parsed.success ? [] : parsed.error.issues.map((zod) => ({ path: zod.path, message: zod.message, zod }));
  if (parsed.success) {
    const first = new Map<string, number>();
    parsed.data.clients.forEach((c, i) => {
      const earlier = first.get(c.id);
      if (earlier === undefined) first.set(c.id, i);
      else issues.push({ path: ['clients', i, 'id'], message: `duplicate client id ${JSON.stringify(c.id)} (also clients[${earlier}])` });
    });
  }
  if (!parsed.success || issues.length > 0) {
    return { ok: false, errors: issuesToErrors(fileName, yaml.raw, issues, yaml.locate, (path) => schemaKeys(clientsFileSchema, path)) };
  }
  return { ok: true, registry: new ClientRegistry(parsed.data), hash: contentHash(text) };
}

export function loadClientRegistry(file: string): RegistryResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [configError({ file, field: '', message: `cannot read the client registry: ${err instanceof Error ? err.message : String(err)}` })] };
  }
  return parseClientRegistry(text, file);
}
