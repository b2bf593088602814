// Android Key Attestation chains for tests: a test root CA → intermediate → leaf whose key is the device
// key, the leaf carrying a KeyDescription encoded with the same ASN.1 schema the verifier parses with.
// Not imported by production code.
import { createHash, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import {
  AttestationApplicationId,
  AttestationPackageInfo,
  AuthorizationList,
  id_ce_keyDescription,
  IntegerSet,
  KeyDescription,
  RootOfTrust,
  SecurityLevel,
  Version,
  VerifiedBootState,
} from '@peculiar/asn1-android';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  id_ce_basicConstraints,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version as CertVersion,
} from '@peculiar/asn1-x509';
import { androidAttestationChallenge } from './android-key-attestation.js';

export const ANDROID_PACKAGE = 'com.example.superapp';
/** SHA-256 of the test app's "signing certificate". */
export const ANDROID_SIGNING_DIGEST = createHash('sha256').update('test app signing certificate').digest('hex');

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const DAY_MS = 86_400_000;

function name(commonName: string): Name {
  return new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: commonName }) })])]);
}

export interface CertSpec {
  readonly subject: string;
  readonly issuer: string;
  /** The certificate's key (public). */
  readonly publicKey: KeyObject;
  /** The issuer's P-256 private key: signs the certificate. */
  readonly signingKey: KeyObject;
  readonly ca: boolean;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extensions?: readonly Extension[];
  readonly serial?: number;
}

/** A DER X.509 v3 certificate, ecdsa-with-SHA256. */
export function buildCertificate(spec: CertSpec): Uint8Array {
  const now = Date.now();
  const extensions = [
    new Extension({ extnID: id_ce_basicConstraints, critical: true, extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: spec.ca }))) }),
    ...(spec.extensions ?? []),
  ];
  const tbs = new TBSCertificate({
    version: CertVersion.v3,
    serialNumber: new Uint8Array([0x01, spec.serial ?? 1]).buffer,
    signature: new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 }),
    issuer: name(spec.issuer),
    validity: new Validity({ notBefore: spec.notBefore ?? new Date(now - DAY_MS), notAfter: spec.notAfter ?? new Date(now + 365 * DAY_MS) }),
    subject: name(spec.subject),
    subjectPublicKeyInfo: AsnConvert.parse(spec.publicKey.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo),
    extensions: new Extensions(extensions),
  });
  const tbsDer = AsnConvert.serialize(tbs);
  const signature = sign('sha256', new Uint8Array(tbsDer), spec.signingKey);
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 }), signatureValue: new Uint8Array(signature).buffer });
  return new Uint8Array(AsnConvert.serialize(cert));
}

export interface KeyDescriptionSpec {
  readonly challenge: Uint8Array;
  readonly securityLevel?: SecurityLevel;
  readonly keymasterSecurityLevel?: SecurityLevel;
  readonly packages?: readonly string[];
  readonly signingDigests?: readonly string[];
  readonly deviceLocked?: boolean;
  readonly verifiedBootState?: VerifiedBootState;
  readonly rootOfTrust?: boolean;
  /** KeyMint origin tag: 0 generated, 2 imported. */
  readonly origin?: number;
}

/** The KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17) as a device would put it in the leaf. */
export function keyDescriptionExtension(spec: KeyDescriptionSpec): Extension {
  const level = spec.securityLevel ?? SecurityLevel.trustedEnvironment;
  const applicationId = new AttestationApplicationId({
    packageInfos: (spec.packages ?? [ANDROID_PACKAGE]).map((p) => new AttestationPackageInfo({ packageName: new OctetString(Buffer.from(p, 'utf8')), version: 42 })),
    signatureDigests: (spec.signingDigests ?? [ANDROID_SIGNING_DIGEST]).map((d) => new OctetString(Buffer.from(d, 'hex'))),
  });
  const description = new KeyDescription({
    attestationVersion: Version.keyMint2,
    attestationSecurityLevel: level,
    keymasterVersion: 200,
    keymasterSecurityLevel: spec.keymasterSecurityLevel ?? level,
    attestationChallenge: new OctetString(spec.challenge),
    uniqueId: new OctetString(new Uint8Array(0)),
    softwareEnforced: new AuthorizationList({
      creationDateTime: Date.now(),
      attestationApplicationId: new OctetString(AsnConvert.serialize(applicationId)),
    }),
    teeEnforced: new AuthorizationList({
      purpose: new IntegerSet([2]),
      algorithm: 3,
      keySize: 256,
      digest: new IntegerSet([4]),
      ecCurve: 1,
      noAuthRequired: null,
      origin: spec.origin ?? 0,
      ...(spec.rootOfTrust === false
        ? {}
        : {
            rootOfTrust: new RootOfTrust({
              verifiedBootKey: new OctetString(new Uint8Array(32).fill(7)),
              deviceLocked: spec.deviceLocked ?? true,
              verifiedBootState: spec.verifiedBootState ?? VerifiedBootState.verified,
              verifiedBootHash: new OctetString(new Uint8Array(32).fill(9)),
            }),
          }),
      osVersion: 150000,
      osPatchLevel: 202611,
    }),
  });
  return new Extension({ extnID: id_ce_keyDescription, critical: false, extnValue: new OctetString(AsnConvert.serialize(description)) });
}

export interface TestAttestationCa {
  readonly rootKey: KeyObject;
  readonly rootDer: Uint8Array;
  readonly root: X509Certificate;
  readonly rootPem: string;
  readonly intermediateKey: KeyObject;
  readonly intermediateDer: Uint8Array;
}

/** A root CA and an intermediate under it (the shape of Google's attestation PKI, with test keys). */
export function testAttestationCa(label = 'Test Attestation Root'): TestAttestationCa {
  const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const intermediate = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rootDer = buildCertificate({ subject: label, issuer: label, publicKey: root.publicKey, signingKey: root.privateKey, ca: true });
  const intermediateDer = buildCertificate({ subject: `${label} Intermediate`, issuer: label, publicKey: intermediate.publicKey, signingKey: root.privateKey, ca: true, serial: 2 });
  const rootCert = new X509Certificate(rootDer);
  return { rootKey: root.privateKey, rootDer, root: rootCert, rootPem: rootCert.toString(), intermediateKey: intermediate.privateKey, intermediateDer };
}

/** The leaf a device's KeyStore would hand back for `deviceKey`, under `ca`'s intermediate; leaf first, root last. */
export function attestationChain(ca: TestAttestationCa, deviceKey: KeyObject, challenge: string, spec: Partial<KeyDescriptionSpec> = {}, leaf: Partial<CertSpec> = {}): Uint8Array[] {
  const leafDer = buildCertificate({
    subject: 'Android Keystore Key',
    issuer: `${ca.root.subject.replace(/^CN=/, '')} Intermediate`,
    publicKey: deviceKey,
    signingKey: ca.intermediateKey,
    ca: false,
    serial: 3,
    extensions: [keyDescriptionExtension({ challenge: androidAttestationChallenge(challenge), ...spec })],
    ...leaf,
  });
  return [leafDer, ca.intermediateDer, ca.rootDer];
}
