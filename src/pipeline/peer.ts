// What Envoy tells gatehouse about the downstream connection (the adapters fill it in).

/** The client certificate Envoy verified on the downstream connection (mTLS). */
export interface PeerCertificate {
  /** URI SANs (e.g. SPIFFE ids): every one from a PEM (ext_authz), only the first from ext_proc attributes */
  readonly uriSans: readonly string[];
  /** subject DN in Envoy's RFC 2253 form, e.g. `CN=acme,O=Acme Ltd,C=KR` */
  readonly subject?: string;
  /** SHA-256 of the DER certificate, lower-case hex without separators */
  readonly sha256?: string;
}

/** Facts about the downstream connection that Envoy hands over (attributes / ext_authz peer). */
export interface PeerInfo {
  readonly sourceAddress?: string;
  /** first URI SAN, else DNS SAN, else subject of the client certificate (mTLS) */
  readonly principal?: string;
  /** the verified client certificate, when the connection is mTLS and Envoy forwards its facts */
  readonly certificate?: PeerCertificate;
}
