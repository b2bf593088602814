// A real HTTP/1.1 upstream on 127.0.0.1:0 that records every request it receives and, by default,
// echoes (200 + a JSON description of what it saw). Tests can script responses per request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Pair = [name: string, value: string];

export interface RecordedRequest {
  method: string;
  path: string;
  /** Header pairs in wire order, names lower-cased. */
  headers: Pair[];
  body: Buffer;
  trailers: Pair[];
}

export interface UpstreamResponse {
  status?: number; // default 200
  headers?: Pair[];
  /** An array is written chunk by chunk (chunked encoding unless content-length is set). */
  body?: string | Buffer | Buffer[];
  trailers?: Pair[]; // sent with chunked encoding
  delayMs?: number; // before the response headers
  chunkDelayMs?: number; // between body chunks
}

export type UpstreamHandler = (req: RecordedRequest) => UpstreamResponse | Promise<UpstreamResponse>;

export interface Upstream {
  host: string;
  port: number;
  requests: RecordedRequest[];
  /** Responses used (in order) for the next requests, before falling back to the handler. */
  enqueue(...responses: UpstreamResponse[]): void;
  close(): Promise<void>;
}

export function echoResponse(req: RecordedRequest): UpstreamResponse {
  return {
    status: 200,
    headers: [['content-type', 'application/json']],
    body: JSON.stringify({ method: req.method, path: req.path, headers: req.headers, body: req.body.toString('utf8'), trailers: req.trailers }),
  };
}

function pairs(raw: string[]): Pair[] {
  const out: Pair[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

export async function startUpstream(handler: UpstreamHandler = echoResponse): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const queue: UpstreamResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: pairs(req.rawHeaders),
        body: Buffer.concat(chunks),
        trailers: pairs(req.rawTrailers),
      };
      requests.push(recorded);
      void respond(recorded, res);
    });
    req.on('error', () => undefined);
  });

  async function respond(recorded: RecordedRequest, res: ServerResponse): Promise<void> {
    try {
      const scripted = queue.shift() ?? (await handler(recorded));
      if (scripted.delayMs !== undefined) await sleep(scripted.delayMs);
      if (res.destroyed) return;
      const body = scripted.body === undefined ? [] : Array.isArray(scripted.body) ? scripted.body : [Buffer.from(scripted.body)];
      const headers = scripted.headers ?? [];
      const hasLength = headers.some(([n]) => n.toLowerCase() === 'content-length');
      const flat: string[] = [];
      for (const [n, v] of headers) flat.push(n, v);
      if (scripted.trailers !== undefined && scripted.trailers.length > 0) {
        flat.push('trailer', scripted.trailers.map(([n]) => n).join(', '));
      } else if (!hasLength && body.length <= 1) {
        const len = body.reduce((a, b) => a + b.length, 0);
        flat.push('content-length', String(len));
      }
      res.writeHead(scripted.status ?? 200, flat);
      for (let i = 0; i < body.length; i++) {
        if (i > 0 && scripted.chunkDelayMs !== undefined) await sleep(scripted.chunkDelayMs);
        if (res.destroyed) return;
        res.write(body[i]);
      }
      if (scripted.trailers !== undefined && scripted.trailers.length > 0) res.addTrailers(Object.fromEntries(scripted.trailers));
      res.end();
    } catch {
      res.destroy();
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    requests,
    enqueue: (...r) => queue.push(...r),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => { resolve(); });
      }),
  };
}
