// Log lines to a file descriptor (stdout), in batches written synchronously by the main thread.
//
// Why not pino.destination (sonic-boom): measured on one pinned core under the ext_proc bench, its
// asynchronous mode cost ~22 µs a request (a thread-pool hop per batch on the same core) and its
// synchronous mode ~12 µs, against ~1.6 µs to build the line: each write measures the byte length
// of the whole pending batch string again (Buffer.byteLength of a growing rope, flattened each
// time), so a batch of n lines costs O(n²) bytes of work. Here a line is encoded once, into a
// preallocated buffer, and a batch goes out in one write(2) when it reaches FLUSH_AT_BYTES, on a
// timer, before exit, or on flush(): O(line) a line and one syscall per ~20 lines.
//
// Back-pressure, not memory: when the reader of the fd is slow (a full pipe, EAGAIN on a
// non-blocking fd) the write waits (1 ms steps), so a stuck log reader slows gatehouse down rather
// than growing its memory without bound. A write that fails otherwise (EPIPE, EBADF: the reader is
// gone) drops that batch and never throws into the caller: logging must not fail a request.
import { writeSync } from 'node:fs';

/** a batch goes out once it holds this much */
export const FLUSH_AT_BYTES = 8 * 1024;
/** and at least this often while lines wait */
export const FLUSH_INTERVAL_MS = 200;
const BUFFER_BYTES = 64 * 1024;
const EAGAIN_WAIT_MS = 1;

export interface BatchedFdWriter {
  write(line: string): void;
  /** writes what is pending, then calls back (pino's logger.flush calls this) */
  flush(callback?: () => void): void;
  flushSync(): void;
  /** batches lost to a write error other than EAGAIN (the reader is gone) */
  readonly failedWrites: number;
}

/** Blocks the thread for `ms` (no event loop turn: the write must finish before anything else runs). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

type WriteSync = (fd: number, buffer: Buffer, offset: number, length: number) => number;

/** write(2) until every byte is out: partial writes continue, EAGAIN waits and retries. */
function writeAll(write: WriteSync, fd: number, buffer: Buffer, length: number): void {
  let offset = 0;
  while (offset < length) {
    try {
      offset += write(fd, buffer, offset, length - offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      pause(EAGAIN_WAIT_MS);
    }
  }
}

export interface BatchedFdOptions {
  readonly flushAtBytes?: number;
  readonly flushIntervalMs?: number;
  /** fs.writeSync; tests hand in one that answers EAGAIN, partial writes or EPIPE */
  readonly writeSync?: WriteSync;
}

export function createBatchedFdWriter(fd: number, options: BatchedFdOptions = {}): BatchedFdWriter {
  const write = options.writeSync ?? writeSync;
  const flushAt = options.flushAtBytes ?? FLUSH_AT_BYTES;
  const buffer = Buffer.allocUnsafe(Math.max(BUFFER_BYTES, flushAt * 2));
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;

  let failedWrites = 0;
  const send = (bytes: Buffer, length: number): void => {
    try {
      writeAll(write, fd, bytes, length);
    } catch {
      failedWrites++;
    }
  };

  const flushSync = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending === 0) return;
    const length = pending;
    pending = 0;
    send(buffer, length);
  };

  // Lines written just before an exit (a crash, process.exit) still reach the fd.
  process.once('exit', flushSync);

  return {
    get failedWrites(): number {
      return failedWrites;
    },
    write(line: string): void {
      const bytes = Buffer.byteLength(line);
      if (pending + bytes > buffer.length) flushSync();
      if (bytes > buffer.length) {
        send(Buffer.from(line), bytes); // a line larger than the buffer goes out alone
        return;
      }
      pending += buffer.write(line, pending);
      if (pending >= flushAt) flushSync();
      else if (timer === undefined) {
        timer = setTimeout(flushSync, options.flushIntervalMs ?? FLUSH_INTERVAL_MS);
        timer.unref();
      }
    },
    flush(callback?: () => void): void {
      flushSync();
      callback?.();
    },
    flushSync,
  };
}
