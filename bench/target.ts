// A server under test as its own process: started pinned to a core, ready once its gRPC port
// accepts connections, measured through /proc, stopped with SIGTERM (SIGKILL after a grace period).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { createInterface } from 'node:readline';

export function hasCommand(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  return r.error === undefined && r.status === 0;
}

/** A port the kernel just handed out on 127.0.0.1 (free unless someone grabs it in between). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr !== null && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

export interface StartOptions {
  command: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** CPU list for taskset; omitted: not pinned */
  cpu?: string;
  /**
   * the gRPC port the process will listen on; it is ready once this accepts a TCP connection (a
   * "listening" line on stdout could come from another listener, e.g. the admin server)
   */
  port: number;
  readyTimeoutMs: number;
}

export interface RunningProcess {
  pid: number;
  /** the last lines it wrote (stdout and stderr), for error messages */
  recentOutput(): string;
  stop(graceMs?: number): Promise<void>;
  exited: boolean;
}

export async function startProcess(o: StartOptions): Promise<RunningProcess> {
  const argv = o.cpu !== undefined ? ['taskset', '-c', o.cpu, ...o.command] : [...o.command];
  const [bin, ...args] = argv;
  if (bin === undefined) throw new Error('empty command');
  const child: ChildProcess = spawn(bin, args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const recent: string[] = [];
  // Always drain both pipes: a server logging to a full pipe would block and measure the pipe.
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
    });
  }
  let exitInfo: string | undefined;
  const exitState = (): string | undefined => exitInfo;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => { exitInfo = `exit code ${String(code)}, signal ${String(signal)}`; resolve(); });
    child.once('error', (e) => { exitInfo = `spawn error: ${e.message}`; resolve(); });
  });
  const proc: RunningProcess = {
    pid: child.pid ?? -1,
    exited: false,
    recentOutput: () => recent.join('\n'),
    async stop(graceMs = 3000) {
      if (exitState() !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  void exited.then(() => { proc.exited = true; });

  const deadline = Date.now() + o.readyTimeoutMs;
  while (Date.now() < deadline) {
    const gone = exitState();
    if (gone !== undefined) throw new Error(`${argv.join(' ')} exited before it was ready (${gone})\n${proc.recentOutput()}`);
    if (await canConnect(o.port)) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  await proc.stop();
  throw new Error(`${argv.join(' ')} not ready on port ${o.port} within ${o.readyTimeoutMs} ms\n${proc.recentOutput()}`);
}

export interface MemoryStats {
  /** peak resident set (VmHWM), MiB */
  peakRssMiB: number;
  /** resident set now (VmRSS), MiB */
  rssMiB: number;
}

export function memoryOf(pid: number): MemoryStats {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    if (m?.[1] === undefined) throw new Error(`/proc/${pid}/status: no ${field}`);
    return Number(m[1]);
  };
  return { peakRssMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout.trim());
    clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSecondsOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after "(comm)": state is field 3, utime 14, stime 15
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/${pid}/stat unreadable`);
  return (utime + stime) / ticksPerSecond();
}
