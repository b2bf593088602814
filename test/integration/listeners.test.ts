// gatehouse's listeners: the admin API on its own port when admin.listen is set (so /metrics and
// the probes can be open to monitoring and the API not), and a port already taken named with the
// config field and the variable that move it, not a bare EADDRINUSE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../support/config.js';
import { startGatehouse, StartupError } from '../../src/gatehouse.js';
import { ADMIN_PATHS } from '../../src/admin/server.js';
import { tempDir } from '../support/temp-dir.js';

const ROUTES = 'routes:\n  - id: api\n    match: { path: { prefix: / } }\n';
const quiet = { write: (): void => undefined };

function config(text: string) {
  const parsed = parseConfig(text, 'listeners-test.yaml');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  return parsed.config;
}

async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

test('with admin.listen the admin API answers only on its own port, and /metrics and the probes only on the admin port', async (t) => {
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'a-long-enough-admin-token-for-tests\n');
  const gatehouse = await startGatehouse({
    config: config(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nadmin: { tokenFile: ${JSON.stringify(tokenFile)}, listen: "127.0.0.1:0" }\n${ROUTES}`),
    runtimeMetrics: false,
    logDestination: quiet,
  });
  t.after(() => gatehouse.stop(100));
  assert.ok(gatehouse.adminApiPort !== undefined && gatehouse.adminApiPort !== gatehouse.adminPort);
  const get = (port: number, path: string): Promise<Response> => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: 'Bearer a-long-enough-admin-token-for-tests' } });
  assert.equal((await get(gatehouse.adminApiPort, '/admin/accounts?subject=alice')).status, 200);
  assert.equal((await get(gatehouse.adminPort, '/admin/accounts?subject=alice')).status, 404, 'the API is not on the metrics port');
  for (const path of Object.values(ADMIN_PATHS)) {
    assert.equal((await get(gatehouse.adminPort, path)).status, 200, path);
    assert.equal((await get(gatehouse.adminApiPort, path)).status, 404, `${path} is not on the API port`);
  }
});

test('without admin.listen the API stays on the admin port (as before)', async (t) => {
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'a-long-enough-admin-token-for-tests\n');
  const gatehouse = await startGatehouse({ config: config(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nadmin: { tokenFile: ${JSON.stringify(tokenFile)} }\n${ROUTES}`), runtimeMetrics: false, logDestination: quiet });
  t.after(() => gatehouse.stop(100));
  assert.equal(gatehouse.adminApiPort, undefined);
  const res = await fetch(`http://127.0.0.1:${gatehouse.adminPort}/admin/accounts?subject=alice`, { headers: { authorization: 'Bearer a-long-enough-admin-token-for-tests' } });
  assert.equal(res.status, 200);
});

test('a busy port fails the start naming the listener and the variable that moves it', async (t) => {
  const taken = await occupy();
  t.after(() => { taken.server.close(); });
  await assert.rejects(
    startGatehouse({ config: config(`listen: { grpc: "127.0.0.1:${taken.port}", admin: "127.0.0.1:0" }\n${ROUTES}`), runtimeMetrics: false, logDestination: quiet }),
    (err: unknown) => err instanceof StartupError && new RegExp(`^listen\\.grpc: 127\\.0\\.0\\.1:${taken.port} is already in use by another process; stop it, or set GATEHOUSE_GRPC_LISTEN or listen\\.grpc in the config`).test(err.message),
  );
  await assert.rejects(
    startGatehouse({ config: config(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:${taken.port}" }\n${ROUTES}`), runtimeMetrics: false, logDestination: quiet }),
    (err: unknown) => err instanceof StartupError && err.message.includes('GATEHOUSE_ADMIN_LISTEN') && err.message.startsWith('listen.admin:'),
  );
});
