// Redis key layout, in one place. Every key is `<prefix>{<tag>}:<kind>[:<more>]`:
//  - the braces are a Cluster hash tag: only `<tag>` picks the slot. Tagging nonces by key id puts a
//    device's nonces in the same slot as its device record (the signing key id is the device id), so a
//    later Lua script or MULTI can check "device not revoked" and "nonce first use" in one atomic step,
//    which Cluster refuses across slots (CROSSSLOT);
//  - the prefix stays outside the tag, so that deployments sharing a Redis differ by prefix only.
// The parts come from clients (key ids, nonces, subjects): anything outside a small safe alphabet or
// longer than 128 characters is replaced by a hash, so a part can never carry a `{`/`}` that moves the
// tag, a `:` that aliases another key, or megabytes of key.
import { createHash } from 'node:crypto';

const SAFE_PART = /^[A-Za-z0-9._-]{1,128}$/;

/** the part as is when safe, else `~` + base64url(sha256): `~` is outside SAFE_PART, so the two never collide */
export function keyPart(text: string): string {
  return SAFE_PART.test(text) ? text : `~${createHash('sha256').update(text, 'utf8').digest('base64url')}`;
}

export class KeyLayout {
  constructor(readonly prefix: string) {}

  nonce(keyId: string, nonce: string): string {
    return `${this.prefix}{${keyPart(keyId)}}:n:${keyPart(nonce)}`;
  }

  device(deviceId: string): string {
    return `${this.prefix}{${keyPart(deviceId)}}:device`;
  }

  challenge(challengeId: string): string {
    return `${this.prefix}{${keyPart(challengeId)}}:challenge`;
  }

  disabledAccount(subject: string): string {
    return `${this.prefix}{${keyPart(subject)}}:disabled`;
  }

  /** SCAN pattern of every disabledAccount key (the prefix is free of glob characters: see the schema) */
  disabledAccountPattern(): string {
    return `${this.prefix}{*}:disabled`;
  }

  /**
   * when a gatehouse last saw this Redis lose what it held (Unix ms): shared, so a replica that
   * (re)starts after the loss learns of it from the ones that saw it (src/stores/redis.ts)
   */
  memoryLoss(): string {
    return `${this.prefix}{gatehouse}:memory-loss`;
  }

  /** a disable rule's sliding window of one subject: same slot as the subject's disabled key */
  ruleWindow(subject: string, rule: string): string {
    return `${this.prefix}{${keyPart(subject)}}:rule:${keyPart(rule)}`;
  }
}
