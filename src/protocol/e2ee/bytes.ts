// Byte helpers for the e2ee wire formats. Kept inside e2ee/ so the protocol core has no
// dependency on another team's module; everything here is allocation-light and never throws
// on attacker-controlled input (readers return undefined instead).

export const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

export const fromHex = (hex: string): Buffer => {
  const clean = hex.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new Error(`not hex: ${hex.slice(0, 16)}…`);
  return Buffer.from(clean, 'hex');
};

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

export const u16 = (value: number): Buffer => {
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(value, 0);
  return out;
};

/** I2OSP(value, 2) ‖ bytes: the length-prefixed form every variable field in our formats uses. */
export const lengthPrefixed16 = (bytes: Uint8Array): Buffer => Buffer.concat([u16(bytes.length), bytes]);

export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Sequential reader over untrusted bytes: every read is bounds-checked and answers undefined when short. */
export class ByteReader {
  private offset = 0;
  constructor(private readonly bytes: Buffer) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(): number | undefined {
    if (this.remaining < 1) return undefined;
    const value = this.bytes[this.offset];
    this.offset += 1;
    return value;
  }

  u16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const value = this.bytes.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  take(length: number): Buffer | undefined {
    if (length < 0 || this.remaining < length) return undefined;
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  rest(): Buffer {
    const slice = this.bytes.subarray(this.offset);
    this.offset = this.bytes.length;
    return slice;
  }
}
