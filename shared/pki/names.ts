import { AsnConvert } from "@peculiar/asn1-schema";
import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } from "@peculiar/asn1-x509";
import { x509 } from "./crypto-provider";

export const ORGANIZATION_OID = "2.5.4.10";
export const COMMON_NAME_OID = "2.5.4.3";

// X.520 PrintableString's alphabet; anything else goes in a UTF8String, which is also what Go does.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * A distinguished name with one attribute, built from ASN.1 directly. @peculiar/x509's JSON/string Name
 * parser unescapes its values (an org of `Solo, Inc. + "friends"` came out as `friends`), and an org
 * name is free text from a custom resource, so it must go into the certificate verbatim.
 */
export function singleAttributeName(type: string, value: string): x509.Name {
  const attributeValue = new AttributeValue(PRINTABLE.test(value) ? { printableString: value } : { utf8String: value });
  const name = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: attributeValue })])]);
  return new x509.Name(AsnConvert.serialize(name));
}
