import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';

// A software WebAuthn authenticator (ES256, attestation "none"): it answers the options
// `@simplewebauthn/server` makes the way a browser and authenticator would, so the server's
// checks run on real signatures. Its counter and flags are set by the test.

type Cbor = number | Uint8Array | string | Map<number, Cbor>;

/** Just the CBOR a COSE key and a "none" attestation object need. */
function cbor(value: Cbor): Buffer {
  const head = (major: number, length: number): Buffer => {
    if (length < 24) return Buffer.from([(major << 5) | length]);
    if (length < 256) return Buffer.from([(major << 5) | 24, length]);
    const out = Buffer.alloc(3);
    out[0] = (major << 5) | 25;
    out.writeUInt16BE(length, 1);
    return out;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  const parts = [head(5, value.size)];
  for (const [key, item] of value) parts.push(cbor(key), cbor(item));
  return Buffer.concat(parts);
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

export interface SoftCredential {
  readonly id: Buffer;
  readonly key: KeyObject;
  readonly publicJwk: { x: string; y: string };
  readonly userHandle: string;
}

export class SoftAuthenticator {
  /** The signature counter the next assertion reports. */
  counter = 1;
  /** Whether the user is verified (PIN, biometrics). */
  userVerified = true;
  /** A synced (multi-device) passkey: backup eligible and backed up. */
  synced = false;
  credential: SoftCredential | null = null;

  constructor(
    private readonly rpId: string,
    private readonly origin: string,
  ) {}

  private flags(extra = 0): number {
    const backup = this.synced ? FLAG_BE | FLAG_BS : 0;
    return FLAG_UP | (this.userVerified ? FLAG_UV : 0) | backup | extra;
  }

  private authData(flags: number, counter: number, attested: Buffer | null): Buffer {
    const rpIdHash = createHash('sha256').update(this.rpId).digest();
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([rpIdHash, Buffer.from([flags]), count, attested ?? Buffer.alloc(0)]);
  }

  private clientData(type: string, challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin }));
  }

  /** The answer to registration options (`navigator.credentials.create`). */
  create(options: { challenge: string; user: { id: string } }): Record<string, unknown> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    const id = randomBytes(16);
    this.credential = { id, key: privateKey, publicJwk: jwk, userHandle: options.user.id };
    const cose = cbor(
      new Map<number, Cbor>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x, 'base64url')],
        [-3, Buffer.from(jwk.y, 'base64url')],
      ]),
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, id, cose]);
    const authData = this.authData(this.flags(FLAG_AT), 0, attested);
    const attestationObject = encodeNone(authData);
    const clientDataJSON = this.clientData('webauthn.create', options.challenge);
    return {
      id: id.toString('base64url'),
      rawId: id.toString('base64url'),
      type: 'public-key',
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        attestationObject: attestationObject.toString('base64url'),
        transports: ['internal'],
      },
    };
  }

  /** The answer to authentication options (`navigator.credentials.get`). */
  get(options: { challenge: string }): Record<string, unknown> {
    const credential = this.credential;
    if (!credential) throw new Error('no credential: create one first');
    const authData = this.authData(this.flags(), this.counter, null);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge);
    const signed = Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]);
    const signature = sign('sha256', signed, credential.key);
    return {
      id: credential.id.toString('base64url'),
      rawId: credential.id.toString('base64url'),
      type: 'public-key',
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: credential.userHandle,
      },
    };
  }
}

/** `{ fmt: "none", attStmt: {}, authData }`: text keys, so written out by hand. */
function encodeNone(authData: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([0xa3]),
    cbor('fmt'),
    cbor('none'),
    cbor('attStmt'),
    Buffer.from([0xa0]),
    cbor('authData'),
    cbor(authData),
  ]);
}
