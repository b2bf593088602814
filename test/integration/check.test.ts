// `gatehouse --check` (npm run check): the real process validates a config as a start would, without
// listening or connecting, and answers exit 0 with a summary or exit 2 naming the file and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

function check(config: string | undefined, env: Record<string, string> = {}, args: readonly string[] = []): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), '--check', ...args], {
    cwd: root,
    env: { ...process.env, GATEHOUSE_CONFIG: config ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function tempConfig(t: { after: (fn: () => void) => void }, text: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-check-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, text);
  return file;
}

const LISTEN = 'listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n';

test('the embedded default is valid: exit 0, every route with its filters, nothing listens', () => {
  const run = check(undefined);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /is valid \(the embedded development default\)/);
  assert.match(run.stdout, /^ {2}transfers-signed: \/api\/v1\/transfers → sanitize, signed$/m);
  assert.match(run.stdout, /^mtls clients: \d+ in /m);
  assert.doesNotMatch(run.stdout, /listening/, 'no server was started');
});

test('a config a start would refuse: exit 2 with the file and field, for parse errors and for start-time checks', (t) => {
  const badField = tempConfig(t, `${LISTEN}routes:\n  - id: a\n    match: { path: { prefix: / } }\n    filters:\n      - headers: { request: { sett: { x: y } } }\n`);
  const parse = check(badField);
  assert.equal(parse.status, 2);
  assert.ok(parse.stderr.includes(badField), parse.stderr);
  assert.match(parse.stderr, /routes\[0\].*headers/);

  // parses, but the admin token file does not exist: only a start (or --check) reads it
  const noToken = tempConfig(t, `${LISTEN}admin: { tokenFile: missing-token.txt }\nroutes:\n  - id: a\n    match: { path: { prefix: / } }\n`);
  const token = check(noToken);
  assert.equal(token.status, 2, token.stdout);
  assert.match(token.stderr, /admin\.tokenFile: .*missing-token\.txt/);

  // an mtls route without a client registry: the filter cannot be compiled
  const noClients = tempConfig(t, `${LISTEN}routes:\n  - id: partners\n    match: { path: { prefix: /p/ } }\n    filters:\n      - mtls: {}\n`);
  const mtls = check(noClients);
  assert.equal(mtls.status, 2, mtls.stdout);
  assert.match(mtls.stderr, /routes\[0\] \(id "partners"\).*mtls/);
});

test('a valid config of its own: exit 0, with the environment overrides it would start with', (t) => {
  const file = tempConfig(t, `${LISTEN}routes:\n  - id: only\n    match: { path: { prefix: /api/ } }\n    filters:\n      - headers: { request: { set: { x-gateway: gatehouse } } }\n`);
  const run = check(file, { GATEHOUSE_LOG_LEVEL: 'warn' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is valid\\n1 route, unmatched requests: deny`));
  assert.match(run.stdout, /^ {2}only: \/api\/\* → sanitize, headers$/m);
  assert.match(run.stdout, /overridden by the environment: .*GATEHOUSE_LOG_LEVEL/);
});

test('shadowing: the embedded default warns that the api prefix receives variants of the protected routes; --explain says where a request lands and why', () => {
  const run = check(undefined, {}, []);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^warning: .*gatehouse\.dev\.yaml: routes\[11\] \(id "api"\): match\.path: receives variants of routes\[4\] \(id "transfers-signed"\)'s path without its signed: \/api\/v1\/transfers\/ \(decided on transfers-signed by the path policy\);.*\/api\/v1\/transfers%2e \(refused 400 path_variant by the path policy\)/m);

  const explained = check(undefined, {}, ['--explain', 'POST https://api.example.com/api/v1/transfers/', '--explain', 'POST /api/v1/Transfers']);
  assert.equal(explained.status, 0, explained.stderr);
  assert.match(explained.stdout, /^ {2}path policy: decided on transfers-signed: route api would skip signed/m);
  assert.match(explained.stdout, /^ {4}2\. signed: needs an RFC 9421 signature/m);
  assert.match(explained.stdout, /→ refused 400 path_variant: the path differs only in case/);
  assert.doesNotMatch(explained.stdout, /is valid/, 'explain prints the explanation only');
});

test('shadowing: pathPolicy.shadowing: refuse makes it an error (exit 2) naming the weaker route', (t) => {
  const refused = check(tempConfig(t, `${LISTEN}pathPolicy: { shadowing: refuse }\nroutes:\n  - id: transfers\n    match: { path: { exact: /api/v1/transfers }, methods: [POST] }\n    filters: [{ breaker: {} }]\n  - id: api\n    match: { path: { prefix: /api/ } }\n`));
  assert.equal(refused.status, 2, refused.stdout);
  assert.match(refused.stderr, /routes\[1\] \(id "api"\): match\.path: receives variants of routes\[0\] \(id "transfers"\)'s path without its breaker/);
});
