// Reads the RFC appendix excerpts in this folder exactly as the RFCs print them, so the vectors
// stay a verbatim copy rather than a hand-retyped table.
import { readFileSync } from 'node:fs';

export type VectorRecord = Record<string, string>;

export interface VectorSection {
  /** e.g. "A.1.1.1.  Encryptions" */
  readonly heading: string;
  /** one record per blank-line-separated group (a setup block has one; encryptions several) */
  readonly records: VectorRecord[];
}

export const vectorFile = (name: string): string => readFileSync(new URL(name, import.meta.url), 'utf8');

/** RFC 9180 style: "A.x.y  Title" headings, "name: value" fields whose hex may wrap onto the next lines. */
export function parseRfc9180Appendix(text: string): Map<string, VectorSection> {
  const sections = new Map<string, VectorSection>();
  let section: VectorSection | undefined;
  let record: VectorRecord | undefined;
  let field: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    const heading = /^(A(?:\.\d+)+)\.\s+(.*)$/.exec(line);
    if (heading !== null) {
      section = { heading: line, records: [] };
      sections.set(heading[1]!, section);
      record = undefined;
      field = undefined;
      continue;
    }
    if (section === undefined) continue;
    if (line === '') {
      record = undefined;
      field = undefined;
      continue;
    }
    const named = /^([a-zA-Z_ ]+):\s*([0-9a-f]*)$/.exec(line);
    if (named !== null) {
      if (record === undefined) {
        record = {};
        section.records.push(record);
      }
      field = named[1]!;
      record[field] = named[2]!;
    } else if (/^[0-9a-f]+$/.test(line) && record !== undefined && field !== undefined) {
      record[field] = (record[field] ?? '') + line;
    } else {
      throw new Error(`unparsed vector line: ${line}`);
    }
  }
  return sections;
}

/** RFC 9458 Appendix A style: "name (comment):" then hex-dump lines until a blank line. */
export function parseHexDumps(text: string): Map<string, string> {
  const dumps = new Map<string, string>();
  let name: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    const header = /^([a-z_]+)(?: \(.*\))?:$/.exec(line);
    if (header !== null) {
      name = header[1]!;
      dumps.set(name, '');
    } else if (line === '') {
      name = undefined;
    } else if (name !== undefined && /^[0-9a-f]+$/.test(line)) {
      dumps.set(name, (dumps.get(name) ?? '') + line);
    }
  }
  return dumps;
}
