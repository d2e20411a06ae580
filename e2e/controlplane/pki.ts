// The control plane's own throw-away PKI: a serving CA and certificate for kube-apiserver, a client CA
// whose certificates authenticate users (admin in system:masters, the controller manager), and the
// service-account token signing key pair. ECDSA P-256 throughout: generating it takes milliseconds,
// where RSA keys would make every control-plane start noticeably slower.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import * as fs from "node:fs";
import * as path from "node:path";

x509.cryptoProvider.set(globalThis.crypto);

const EC: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

/** File paths of everything the components read, plus the PEM the launcher embeds in kubeconfigs. */
export interface Pki {
  servingCa: { certPem: string; certFile: string };
  serving: { certFile: string; keyFile: string };
  clientCa: { certFile: string };
  admin: KeyPairPem;
  controllerManager: KeyPairPem;
  serviceAccount: { publicKeyFile: string; privateKeyFile: string };
}

interface Issuer {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

const notBefore = (): Date => new Date(Date.now() - 60 * 60 * 1000); // tolerate small clock skew
const notAfter = (): Date => new Date(Date.now() + 7 * 24 * 60 * 60 * 1000);

async function newKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", key));
  return pem("PRIVATE KEY", der);
}

async function publicKeyPem(key: CryptoKey): Promise<string> {
  return pem("PUBLIC KEY", Buffer.from(await crypto.subtle.exportKey("spki", key)));
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function newCa(cn: string): Promise<Issuer> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${cn}`,
    keys,
    notBefore: notBefore(),
    notAfter: notAfter(),
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

async function issue(
  ca: Issuer,
  subject: string,
  usage: x509.ExtendedKeyUsage,
  sans: x509.JsonGeneralNames = [],
): Promise<KeyPairPem> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    notBefore: notBefore(),
    notAfter: notAfter(),
    signingAlgorithm: SIGN,
    extensions,
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: await privateKeyPem(keys.privateKey) };
}

/** Generates the PKI and writes the files the components need into dir (mode 0600 for keys). */
export async function generatePki(dir: string): Promise<Pki> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (name: string, data: string, mode = 0o644): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, data, { mode });
    return file;
  };

  const [servingCa, clientCa, saKeys] = await Promise.all([
    newCa("cert-agent-test-serving-ca"),
    newCa("cert-agent-test-client-ca"),
    newKeys(),
  ]);
  // The SANs cover every name a client might dial: the loopback address, plus the in-cluster
  // service names so a token's issuer/audience and any in-cluster style config also verify.
  const [serving, admin, controllerManager] = await Promise.all([
    issue(servingCa, "CN=kube-apiserver", x509.ExtendedKeyUsage.serverAuth, [
      { type: "ip", value: "127.0.0.1" },
      { type: "dns", value: "localhost" },
      { type: "dns", value: "kubernetes" },
      { type: "dns", value: "kubernetes.default" },
      { type: "dns", value: "kubernetes.default.svc" },
      { type: "ip", value: "10.0.0.1" },
    ]),
    issue(clientCa, "CN=admin, O=system:masters", x509.ExtendedKeyUsage.clientAuth),
    // system:masters rather than the bootstrap controller-manager role: with
    // --use-service-account-credentials=false the garbage collector must read every resource type.
    issue(clientCa, "CN=system:kube-controller-manager, O=system:masters", x509.ExtendedKeyUsage.clientAuth),
  ]);
  const servingCaPem = servingCa.cert.toString("pem") + "\n";

  return {
    servingCa: { certPem: servingCaPem, certFile: write("serving-ca.crt", servingCaPem) },
    serving: {
      certFile: write("apiserver.crt", serving.certPem + servingCaPem),
      keyFile: write("apiserver.key", serving.keyPem, 0o600),
    },
    clientCa: { certFile: write("client-ca.crt", clientCa.cert.toString("pem") + "\n") },
    admin,
    controllerManager,
    serviceAccount: {
      publicKeyFile: write("sa.pub", await publicKeyPem(saKeys.publicKey)),
      privateKeyFile: write("sa.key", await privateKeyPem(saKeys.privateKey), 0o600),
    },
  };
}
