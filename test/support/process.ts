// Starts the real gatehouse process (src/main.ts through tsx) and reads its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

export interface GatehouseProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly adminPort: number;
  /** every JSON log line so far */
  readonly lines: Record<string, unknown>[];
  readonly stderr: () => string;
  /** everything written to stdout so far (cheaper than `lines` to search often) */
  readonly stdout: () => string;
  /** resolves with a log line matching `predicate` (bounded) */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

export function runGatehouse(env: Record<string, string>): { child: ChildProcess; exited: Promise<number | null>; stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts')], {
    cwd: root,
    env: { ...process.env, GATEHOUSE_GRPC_LISTEN: '127.0.0.1:0', GATEHOUSE_ADMIN_LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code); }));
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** how long a process may take to start or to log a line: generous, tsx compiles on a busy machine (seconds) */
export const PROCESS_WAIT_MS = 90_000;

export async function startGatehouseProcess(env: Record<string, string>, timeoutMs = PROCESS_WAIT_MS): Promise<GatehouseProcess> {
  const run = runGatehouse(env);
  const parse = (): Record<string, unknown>[] =>
    run.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitFor = async (predicate: (line: Record<string, unknown>) => boolean, waitMs = PROCESS_WAIT_MS) => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const hit = parse().find(predicate);
      if (hit) return hit;
      if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`no such log line; stdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const listening = await waitFor((l) => l['msg'] === 'listening', timeoutMs);
  return {
    child: run.child,
    grpcPort: listening['grpc_port'] as number,
    adminPort: listening['admin_port'] as number,
    get lines() { return parse(); },
    stderr: run.stderr,
    stdout: run.stdout,
    waitFor,
    exited: run.exited,
  };
}
