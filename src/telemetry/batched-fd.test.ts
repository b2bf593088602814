// The stdout writer behind every logger: order, batching, back-pressure and failures, with a fake
// write(2), and the flush at exit in a real child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createBatchedFdWriter } from './batched-fd.js';

/** a fake write(2): records each call's bytes; `answer` decides how many bytes it takes or what it throws */
function fakeWrite(answer: (call: number, length: number) => number | Error = (_call, length) => length) {
  const calls: string[] = [];
  let taken = '';
  const write = (_fd: number, buffer: Buffer, offset: number, length: number): number => {
    const outcome = answer(calls.length, length);
    calls.push(buffer.toString('utf8', offset, offset + length));
    if (outcome instanceof Error) throw outcome;
    taken += buffer.toString('utf8', offset, offset + outcome);
    return outcome;
  };
  return { write, calls, taken: () => taken };
}

const errno = (code: string): Error => Object.assign(new Error(code), { code });

test('lines wait for a batch: one write per FLUSH_AT bytes, in order, and flush() sends the rest', () => {
  const fake = fakeWrite();
  const writer = createBatchedFdWriter(99, { flushAtBytes: 100, writeSync: fake.write });
  const lines = Array.from({ length: 12 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(20)}"}\n`);
  for (const line of lines) writer.write(line);
  assert.ok(fake.calls.length >= 2 && fake.calls.length <= 4, `${fake.calls.length} writes for ${lines.join('').length} bytes`);
  for (const call of fake.calls) assert.ok(Buffer.byteLength(call) >= 100, 'a batch goes out only once it reaches the threshold');
  let flushed = false;
  writer.flush(() => { flushed = true; });
  assert.ok(flushed);
  assert.equal(fake.taken(), lines.join(''), 'every line, once, in order');
});

test('multi-byte characters are counted in bytes, and a line larger than the buffer goes out alone, after what was pending', () => {
  const fake = fakeWrite();
  const writer = createBatchedFdWriter(99, { flushAtBytes: 1024, writeSync: fake.write });
  writer.write('{"msg":"한국어 ✓"}\n');
  const huge = `{"big":"${'é'.repeat(200_000)}"}\n`;
  writer.write(huge);
  writer.flushSync();
  assert.equal(fake.taken(), `{"msg":"한국어 ✓"}\n${huge}`);
});

test('EAGAIN and partial writes: the writer waits and continues until every byte is out', () => {
  const fake = fakeWrite((call, length) => (call === 0 ? errno('EAGAIN') : call === 1 ? Math.min(5, length) : length));
  const writer = createBatchedFdWriter(99, { flushAtBytes: 10, writeSync: fake.write });
  writer.write('{"a":"0123456789"}\n');
  assert.equal(fake.taken(), '{"a":"0123456789"}\n');
  assert.equal(fake.calls.length, 3, 'EAGAIN, then 5 bytes, then the rest');
  assert.equal(writer.failedWrites, 0);
});

test('a reader that is gone (EPIPE) drops that batch, never throws into the caller, and later lines still go out', () => {
  let broken = true;
  const fake = fakeWrite((_call, length) => (broken ? errno('EPIPE') : length));
  const writer = createBatchedFdWriter(99, { flushAtBytes: 10, writeSync: fake.write });
  assert.doesNotThrow(() => { writer.write('{"lost":"0123456789"}\n'); });
  assert.equal(writer.failedWrites, 1);
  broken = false;
  writer.write('{"kept":"0123456789"}\n');
  assert.equal(fake.taken(), '{"kept":"0123456789"}\n');
});

test('a line below the threshold goes out on the timer, and at exit', async () => {
  const fake = fakeWrite();
  const writer = createBatchedFdWriter(99, { flushAtBytes: 1024, flushIntervalMs: 20, writeSync: fake.write });
  writer.write('{"soon":1}\n');
  assert.equal(fake.calls.length, 0);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(fake.taken(), '{"soon":1}\n');

  // a real process: lines logged right before process.exit reach stdout
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    const { createBatchedFdWriter } = await import(${JSON.stringify(new URL('./batched-fd.ts', import.meta.url).href)});
    const writer = createBatchedFdWriter(1);
    writer.write('{"last":"words"}\\n');
    process.exit(3);
  `], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(child.status, 3, child.stderr);
  assert.equal(child.stdout, '{"last":"words"}\n');
});
