// A server under test as its own process: started pinned to a core, ready once its gRPC port
// accepts connections, measured through /proc, stopped with SIGTERM (SIGKILL after a grace period).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, readFileSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

export function hasCommand(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  return r.error === undefined && r.status === 0;
}

/** The first line of `cmd --version`, or undefined when the command is absent or fails (no throw). */
export function commandVersion(cmd: string): string | undefined {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return r.stdout.trim().split('\n')[0] || undefined;
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
  /**
   * stdout and stderr go straight into this file (as a container runtime would take them): no pipe
   * for the bench process to read, so its CPU time does not depend on how much the server logs
   */
  logFile: string;
}

export interface RunningProcess {
  pid: number;
  /** the last lines it wrote (stdout and stderr), for error messages */
  recentOutput(): string;
  /** bytes it has written to stdout and stderr */
  outputBytes(): number;
  stop(graceMs?: number): Promise<void>;
  exited: boolean;
}

// Servers still running when the bench exits (a crash, an uncaught error) are killed with it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** The last `lines` lines of a file (from its last 16 KiB). */
function tail(path: string, lines: number): string {
  const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  if (size === 0) return '';
  const len = Math.min(size, 16 * 1024);
  const buf = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, len, size - len);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
}

export async function startProcess(o: StartOptions): Promise<RunningProcess> {
  const argv = o.cpu !== undefined ? ['taskset', '-c', o.cpu, ...o.command] : [...o.command];
  const [bin, ...args] = argv;
  if (bin === undefined) throw new Error('empty command');
  const out = openSync(o.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out); // the child has its own copy
  }
  live.add(child);
  child.once('exit', () => { live.delete(child); });
  let exitInfo: string | undefined;
  const exitState = (): string | undefined => exitInfo;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => { exitInfo = `exit code ${String(code)}, signal ${String(signal)}`; resolve(); });
    child.once('error', (e) => { exitInfo = `spawn error: ${e.message}`; resolve(); });
  });
  const proc: RunningProcess = {
    pid: child.pid ?? -1,
    exited: false,
    recentOutput: () => tail(o.logFile, 40),
    outputBytes: () => statSync(o.logFile, { throwIfNoEntry: false })?.size ?? 0,
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
