// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API loaded
// before the library itself. Every module of shared/pki gets x509 from here, so the order always holds.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Crypto as PeculiarCrypto } from "@peculiar/webcrypto";

/**
 * "node": Node's built-in WebCrypto. The default: it runs RSA key generation off the main thread.
 * "peculiar": @peculiar/webcrypto, a pure-JS-over-node:crypto implementation that generates RSA keys
 * synchronously and freezes the event loop for seconds per RSA-4096 key (measured: see the README, "Why WebCrypto from Node"), which
 * stalls a daemon's watches, probes and lease renewals. It is kept only as an explicit alternative for
 * runtimes whose built-in WebCrypto lacks something.
 */
export type CryptoProviderName = "node" | "peculiar";

let activeName: CryptoProviderName = "node";
let active: Crypto = globalThis.crypto;
x509.cryptoProvider.set(active);

/**
 * Switches the WebCrypto implementation for all of shared/pki and for @peculiar/x509.
 * A CryptoKey belongs to the implementation that made it: keys made before a switch cannot be used after it.
 */
export function useCryptoProvider(name: CryptoProviderName): void {
  active = name === "node" ? globalThis.crypto : new PeculiarCrypto();
  activeName = name;
  x509.cryptoProvider.set(active);
}

export function currentCryptoProvider(): CryptoProviderName {
  return activeName;
}

export function activeCrypto(): Crypto {
  return active;
}

export function subtle(): SubtleCrypto {
  return active.subtle;
}

export { x509 };
