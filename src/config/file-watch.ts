// Watching one file for real changes: its directory is watched (and, when the file is a symlink, its
// target's directory): editors replace files by rename, and Kubernetes swaps a ConfigMap by renaming
// a `..data` symlink, neither of which a watch on the file itself survives. Events are debounced and
// the content hashed, so only a real change reaches `apply`; a slow poll backs fs.watch up. Used for
// the config (reload.ts) and the mtls client registry (src/reload.ts).
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ConfigError } from './errors.js';
import { contentHash } from './load.js';

export type CheckOutcome = 'unchanged' | 'reloaded' | 'rejected' | 'closed';

/** what `apply` made of new content: taken, refused with errors, or the watcher closed meanwhile */
export type ApplyOutcome = 'reloaded' | 'closed' | { readonly rejected: readonly ConfigError[] };

export interface FileWatcherOptions {
  readonly file: string;
  /** the hash of the content running now; without it the file is read (synchronously) now */
  readonly initialHash?: string;
  /** quiet time after the last fs event before the file is read; default 100 ms */
  readonly debounceMs?: number;
  /** re-read the file this often even without events; 0 disables; default 5000 ms */
  readonly pollMs?: number;
  /** new content (a hash not seen before); `isClosed` tells whether to drop the result */
  readonly apply: (text: string, isClosed: () => boolean) => ApplyOutcome | Promise<ApplyOutcome>;
  /** the file cannot be read (reported once per error code) */
  readonly onUnreadable: (code: string) => void;
  readonly onRejected: (errors: readonly ConfigError[]) => void;
  /** the watcher itself failed (a directory watch broke); polling carries on */
  readonly onError?: (error: unknown) => void;
}

export class FileWatcher {
  private readonly file: string;
  private readonly options: FileWatcherOptions;
  private readonly watchers = new Map<string, FSWatcher>();
  private debounceTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** the next check applies the file whatever its hash (check({ force: true })) */
  private forceNext = false;
  /** hash (or read-error code) of the last content looked at, so one change is reported once */
  private lastSeen: string | undefined;
  private runningHash: string | undefined;
  private checking: Promise<CheckOutcome> | undefined;
  private again = false;
  private closed = false;

  constructor(options: FileWatcherOptions) {
    this.options = options;
    this.file = resolve(options.file);
    this.watchDir(dirname(this.file));
    this.refreshTargetWatch();
    // the content the running config came from: a change made after loading but before this watcher
    // started is still a change, while an event for the same content is not
    if (options.initialHash !== undefined && options.initialHash !== '') this.runningHash = options.initialHash;
    else {
      try {
        this.runningHash = contentHash(readFileSync(this.file, 'utf8'));
      } catch {
        this.runningHash = undefined;
      }
    }
    this.lastSeen = this.runningHash;
    const pollMs = options.pollMs ?? 5000;
    if (pollMs > 0) {
      this.pollTimer = setInterval(() => void this.check(), pollMs);
      this.pollTimer.unref();
    }
  }

  /**
   * Read the file now; resolves once it is handled. `force`: apply it even when its content is the
   * running one (SIGHUP): what it names (key files) may have changed while it did not.
   */
  async check(options: { readonly force?: boolean } = {}): Promise<CheckOutcome> {
    if (this.closed) return 'closed';
    if (options.force === true) this.forceNext = true;
    // a check already running: ask for another round, and answer with the loop's outcome, which has
    // seen this request (and its force), perhaps in the round already running
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      let outcome = await this.safeCheck();
      while (this.again && !this.isClosed()) {
        this.again = false;
        const next = await this.safeCheck();
        // a later round that found nothing new does not hide what an earlier one did
        if (next !== 'unchanged') outcome = next;
      }
      return outcome;
    })();
    try {
      return await this.checking;
    } finally {
      this.checking = undefined;
    }
  }

  close(): void {
    this.closed = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** a method, not the field, so checks after an await are not narrowed away */
  private isClosed(): boolean {
    return this.closed;
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.check();
    }, this.options.debounceMs ?? 100);
    this.debounceTimer.unref();
  }

  private watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = watch(dir, { persistent: false }, () => {
        this.schedule();
      });
      w.on('error', (err) => {
        w.close();
        this.watchers.delete(dir);
        this.report('onError', err);
      });
      this.watchers.set(dir, w);
    } catch (err) {
      this.report('onError', err);
    }
  }

  /** when the file is a symlink into another directory, watch that one too (and drop stale ones) */
  private refreshTargetWatch(): void {
    const own = dirname(this.file);
    let target: string | undefined;
    try {
      target = dirname(realpathSync(this.file));
    } catch {
      target = undefined;
    }
    if (this.closed) return;
    for (const [dir, w] of this.watchers) {
      if (dir !== own && dir !== target) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    if (target !== undefined && target !== own) this.watchDir(target);
  }

  private report<K extends 'onRejected' | 'onUnreadable' | 'onError'>(which: K, arg: K extends 'onRejected' ? readonly ConfigError[] : K extends 'onUnreadable' ? string : unknown): void {
    try {
      if (which === 'onRejected') this.options.onRejected(arg as readonly ConfigError[]);
      else if (which === 'onUnreadable') this.options.onUnreadable(arg as string);
      else this.options.onError?.(arg);
    } catch {
      // a throwing callback must not stop the watcher
    }
  }

  /** checks run from timers and fs events: an unexpected throw must not become an unhandled rejection */
  private async safeCheck(): Promise<CheckOutcome> {
    try {
      return await this.runCheck();
    } catch (err) {
      this.report('onError', err);
      return 'rejected';
    }
  }

  private async runCheck(): Promise<CheckOutcome> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (this.closed || this.lastSeen === `unreadable:${code}`) return 'unchanged';
      this.lastSeen = `unreadable:${code}`;
      this.report('onUnreadable', code);
      return 'rejected';
    }
    this.refreshTargetWatch();
    if (this.isClosed()) return 'closed';
    const hash = contentHash(text);
    const forced = this.forceNext;
    this.forceNext = false;
    if (hash === this.lastSeen && !forced) return 'unchanged';
    this.lastSeen = hash;
    if (hash === this.runningHash && !forced) return 'unchanged';

    const outcome = await this.options.apply(text, () => this.isClosed());
    if (outcome === 'closed') return 'closed';
    if (outcome === 'reloaded') {
      this.runningHash = hash;
      return 'reloaded';
    }
    return this.reject(outcome.rejected);
  }

  private reject(errors: readonly ConfigError[]): CheckOutcome {
    if (this.closed) return 'closed';
    this.report('onRejected', errors);
    return 'rejected';
  }
}

