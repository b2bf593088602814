// DEV ONLY: an app that enrolls and obtains credentials through the dev config's device endpoints
// (route device-endpoints, filter issuance), as a real app would. The login token and the
// attestation verdict it needs come from stand-ins of the identity provider and the attestation
// service, whose private keys are committed next to the dev config (config/*.dev-only.pem): anyone
// can mint tokens and verdicts with them, which is why main.ts refuses any other config naming
// their public halves.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigner, signRequest, type RequestSigner, type RequestToSign } from '../sdk/app/signing.js';
import { findPackageRoot } from '../src/config/load.js';
import { deviceApp, json, loginToken, verdict, type DeviceApp, type Gateway, type GatewayAnswer } from '../test/support/device-app.js';

/** What the dev config's issuance entry names (config/gatehouse.dev.yaml, route device-endpoints). */
export const DEV_LOGIN = { issuer: 'https://login.dev.invalid', audience: 'superapp-dev' } as const;
export const DEV_ATTESTATION = { issuer: 'https://attest.dev.invalid', audience: 'com.example.superapp' } as const;
export const DEV_DEVICE_BASE_PATH = '/gatehouse/v1/device';

function devKey(file: string): KeyObject {
  return createPrivateKey(readFileSync(join(findPackageRoot(), 'config', file), 'utf8'));
}

/** The stand-in identity provider and attestation service of the dev config. */
export function devActors(): {
  readonly login: (subject: string) => Promise<string>;
  readonly attest: (challenge: string, thumbprint: string) => Promise<string>;
} {
  const idp = { privateKey: devKey('login-idp.dev-only.pem'), kid: 'DEV-ONLY-login-1', alg: 'ES256' as const };
  const attestation = { privateKey: devKey('attestation-service.dev-only.pem'), kid: 'DEV-ONLY-attest-1', alg: 'EdDSA' as const };
  return {
    login: (subject) => loginToken(idp, { ...DEV_LOGIN, subject }),
    attest: (challenge, thumbprint) => verdict(attestation, { ...DEV_ATTESTATION, challenge, deviceKeyThumbprint: thumbprint, integrity: 'strong' }),
  };
}

export interface DevSignedApp {
  readonly deviceId: string;
  readonly app: DeviceApp;
  readonly device: RequestSigner;
  sign(request: RequestToSign): Promise<Record<string, string>>;
}

class DemoFlowError extends Error {
  constructor(step: string, answer: GatewayAnswer) {
    super(`${step}: ${answer.status} ${answer.body.toString()}`);
  }
}

/** An app enrolled for `subject` through the gateway, holding a credential it got there. */
export async function devSignedApp(gateway: Gateway, subject = 'user-42'): Promise<DevSignedApp> {
  const actors = devActors();
  const app = deviceApp(gateway, DEV_DEVICE_BASE_PATH);
  const device = await generateSigner('ecdsa-p256-sha256');
  const enrollChallenge = await app.challenge('enroll');
  if (enrollChallenge.answer.status !== 200) throw new DemoFlowError('enroll challenge', enrollChallenge.answer);
  const enrolled = await app.enrollAs(await actors.login(subject), enrollChallenge.challenge, device, actors.attest);
  if (enrolled.status !== 201) throw new DemoFlowError('enroll', enrolled);
  const ephemeral = await generateSigner('ed25519');
  const credentialChallenge = await app.challenge('credential');
  const issued = await app.credential(credentialChallenge.challenge, device, ephemeral);
  if (issued.status !== 200) throw new DemoFlowError('credential', issued);
  const { credential } = json(issued) as { credential: string };
  return {
    deviceId: json(enrolled)['deviceId'] as string,
    app,
    device,
    sign: (request) => signRequest(request, { credential, signer: ephemeral, now: Math.floor(Date.now() / 1000) }),
  };
}
