// `promtool check metrics` on an exposition text: what Prometheus itself would complain about.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { skipUnlessCi } from './requires.js';

export const PROMTOOL = '/usr/bin/promtool';

/** `skip` option for tests that need promtool (Debian: prometheus) */
export function skipWithoutPromtool(): false | string {
  return skipUnlessCi(existsSync(PROMTOOL), 'promtool not installed');
}

export function promtoolCheck(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, out }); });
    child.stdin.end(text);
  });
}

export const AMTOOL = '/usr/bin/amtool';

/** `skip` option for tests that need amtool (Debian: prometheus-alertmanager) */
export function skipWithoutAmtool(): false | string {
  return skipUnlessCi(existsSync(AMTOOL), 'amtool not installed');
}
