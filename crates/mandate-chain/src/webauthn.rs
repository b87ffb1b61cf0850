//! Passkey (WebAuthn) owner keys and the assertions they sign.
//!
//! A passkey owner is a P-256 key held by an authenticator (a phone, a laptop's
//! secure enclave, a security key), bound to one web origin: its RP id is the
//! origin's host. To sign an owner text the browser runs `navigator.credentials.get`
//! with the challenge `SHA-256(text)`; the authenticator signs
//! `authenticatorData || SHA-256(clientDataJSON)`. Verifying checks the signature,
//! that `clientDataJSON` is a `webauthn.get` for exactly that challenge and the key's
//! origin (not cross-origin), that `authenticatorData` is for the key's RP id, and
//! that the user was present and verified (UP and UV flags).
//!
//! Every byte here comes from a browser, that is from whoever posts it: the parsers
//! below bound every length and are property-tested.

use std::fmt;
use std::str::FromStr;

use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};

/// Why a passkey key, assertion or signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebAuthnError {
    /// A key, an origin or an assertion does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The assertion does not verify for this key and text (the reason names the check).
    #[error("the passkey assertion is refused: {0}")]
    Refused(&'static str),
}

/// The longest origin accepted (`https://` and a host name with a port).
const MAX_ORIGIN: usize = 200;
/// The longest credential id accepted (WebAuthn allows up to 1023 bytes).
const MAX_CREDENTIAL: usize = 1023;
/// Bounds of an assertion's parts.
const MAX_AUTHENTICATOR_DATA: usize = 1024;
const MAX_CLIENT_DATA: usize = 2048;
const MAX_SIGNATURE: usize = 72;

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, an
/// uncompressed point of 65 bytes follows): what `AuthenticatorAttestationResponse.getPublicKey()`
/// returns for an ES256 credential.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A passkey owner's public identity: `webauthn:<65-byte SEC1 key hex>@<origin>#<credential id hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PasskeyKey {
    public: [u8; 65],
    origin: String,
    credential: Vec<u8>,
}

/// The host of an origin (`https://host[:port]`, or `http://localhost[:port]`), which
/// is the RP id a credential of that origin is scoped to.
fn origin_host(origin: &str) -> Result<&str, WebAuthnError> {
    let bad = |why: &str| WebAuthnError::Malformed(format!("origin {origin:?}: {why}"));
    if origin.len() > MAX_ORIGIN {
        return Err(bad("too long"));
    }
    let (secure, rest) = match (origin.strip_prefix("https://"), origin.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(bad("not http(s)://")),
    };
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the port is not a number"));
        }
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("the host must be a lower-case DNS name"));
    }
    if !secure && host != "localhost" {
        return Err(bad("plain http is for localhost only"));
    }
    Ok(host)
}

impl PasskeyKey {
    /// A key from its SEC1 point (65 bytes, uncompressed), origin and credential id.
    pub fn new(public: &[u8], origin: &str, credential: &[u8]) -> Result<Self, WebAuthnError> {
        let public: [u8; 65] =
            public.try_into().map_err(|_| WebAuthnError::Malformed("a P-256 key is 65 bytes (uncompressed)".into()))?;
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&public)
            .map_err(|_| WebAuthnError::Malformed("not a P-256 public key".into()))?;
        origin_host(origin)?;
        if credential.is_empty() || credential.len() > MAX_CREDENTIAL {
            return Err(WebAuthnError::Malformed("a credential id is 1 to 1023 bytes".into()));
        }
        Ok(PasskeyKey { public, origin: origin.to_string(), credential: credential.to_vec() })
    }

    /// A key from the SubjectPublicKeyInfo (DER) `getPublicKey()` gives for an ES256
    /// credential.
    pub fn from_spki(spki: &[u8], origin: &str, credential: &[u8]) -> Result<Self, WebAuthnError> {
        let point = spki
            .strip_prefix(P256_SPKI_PREFIX.as_slice())
            .filter(|point| point.len() == 65)
            .ok_or_else(|| WebAuthnError::Malformed("not the public key of a P-256 (ES256) credential".into()))?;
        Self::new(point, origin, credential)
    }

    /// The origin the key signs for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The credential id (to ask the browser for this credential).
    pub fn credential(&self) -> &[u8] {
        &self.credential
    }

    /// Verifies `assertion` over `message`: returns the authenticator's signature counter.
    pub fn verify(&self, message: &[u8], assertion: &Assertion) -> Result<u32, WebAuthnError> {
        let data = AuthenticatorData::parse(&assertion.authenticator_data)?;
        let client = ClientData::parse(&assertion.client_data_json)?;
        let host = origin_host(&self.origin)?;
        if client.kind != "webauthn.get" {
            return Err(WebAuthnError::Refused("clientDataJSON.type is not webauthn.get"));
        }
        if client.challenge != base64url(&Sha256::digest(message)) {
            return Err(WebAuthnError::Refused("the challenge is not SHA-256 of this text"));
        }
        if client.origin != self.origin || client.cross_origin {
            return Err(WebAuthnError::Refused("the origin is not the key's origin"));
        }
        if data.rp_id_hash != <[u8; 32]>::from(Sha256::digest(host.as_bytes())) {
            return Err(WebAuthnError::Refused("rpIdHash is not the key's RP id"));
        }
        if data.flags & FLAG_UP == 0 || data.flags & FLAG_UV == 0 {
            return Err(WebAuthnError::Refused("the user was not present and verified (UP and UV flags)"));
        }
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.public)
            .map_err(|_| WebAuthnError::Malformed("not a P-256 public key".into()))?;
        let signature = p256::ecdsa::Signature::from_der(&assertion.signature)
            .map_err(|_| WebAuthnError::Refused("the signature is not DER ECDSA"))?;
        let mut signed = assertion.authenticator_data.clone();
        signed.extend_from_slice(&Sha256::digest(&assertion.client_data_json));
        key.verify(&signed, &signature).map_err(|_| WebAuthnError::Refused("the signature does not verify"))?;
        Ok(data.sign_count)
    }
}

impl fmt::Display for PasskeyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webauthn:{}@{}#{}", hex::encode(self.public), self.origin, hex::encode(&self.credential))
    }
}

impl FromStr for PasskeyKey {
    type Err = WebAuthnError;

    /// `webauthn:<65-byte key hex>@<origin>#<credential id hex>`.
    fn from_str(text: &str) -> Result<Self, WebAuthnError> {
        let malformed =
            || WebAuthnError::Malformed("a passkey is webauthn:<key hex>@<origin>#<credential id hex>".into());
        let rest = text.strip_prefix("webauthn:").ok_or_else(malformed)?;
        let (public, rest) = rest.split_once('@').ok_or_else(malformed)?;
        let (origin, credential) = rest.split_once('#').ok_or_else(malformed)?;
        if public.len() != 130 || credential.len() > 2 * MAX_CREDENTIAL {
            return Err(malformed());
        }
        let public = hex::decode(public).map_err(|_| malformed())?;
        let credential = hex::decode(credential).map_err(|_| malformed())?;
        Self::new(&public, origin, &credential)
    }
}

/// User present.
const FLAG_UP: u8 = 0x01;
/// User verified.
const FLAG_UV: u8 = 0x04;
/// Attested credential data included (registration only).
const FLAG_AT: u8 = 0x40;
/// Extension data included.
const FLAG_ED: u8 = 0x80;

/// The fixed part of `authenticatorData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP id.
    pub rp_id_hash: [u8; 32],
    /// UP, UV, … flags.
    pub flags: u8,
    /// The authenticator's signature counter (0: it keeps none).
    pub sign_count: u32,
}

impl AuthenticatorData {
    /// Parses an assertion's `authenticatorData`: 37 bytes, then extensions only when
    /// the ED flag says so; attested credential data (registration only) is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let malformed = |why: &str| WebAuthnError::Malformed(format!("authenticatorData: {why}"));
        if bytes.len() > MAX_AUTHENTICATOR_DATA {
            return Err(malformed("too long"));
        }
        let (Some(hash), Some(&flags), Some(count)) = (bytes.get(..32), bytes.get(32), bytes.get(33..37)) else {
            return Err(malformed("shorter than 37 bytes"));
        };
        if flags & FLAG_AT != 0 {
            return Err(malformed("attested credential data in an assertion"));
        }
        if flags & FLAG_ED == 0 && bytes.len() != 37 {
            return Err(malformed("trailing bytes without the extension flag"));
        }
        let rp_id_hash: [u8; 32] = hash.try_into().map_err(|_| malformed("rpIdHash"))?;
        let count: [u8; 4] = count.try_into().map_err(|_| malformed("signCount"))?;
        Ok(AuthenticatorData { rp_id_hash, flags, sign_count: u32::from_be_bytes(count) })
    }
}

/// The fields of `clientDataJSON` that are checked. Other members (browsers add
/// some) are ignored; a duplicated member is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default, rename = "crossOrigin")]
    cross_origin: bool,
}

impl ClientData {
    fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        if bytes.len() > MAX_CLIENT_DATA {
            return Err(WebAuthnError::Malformed("clientDataJSON: too long".into()));
        }
        serde_json::from_slice(bytes).map_err(|e| WebAuthnError::Malformed(format!("clientDataJSON: {e}")))
    }
}

/// What `navigator.credentials.get` returns, as an owner signature carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// `response.authenticatorData`.
    pub authenticator_data: Vec<u8>,
    /// `response.clientDataJSON`.
    pub client_data_json: Vec<u8>,
    /// `response.signature` (DER ECDSA).
    pub signature: Vec<u8>,
}

impl Assertion {
    fn checked(self) -> Result<Self, WebAuthnError> {
        if self.authenticator_data.len() > MAX_AUTHENTICATOR_DATA
            || self.client_data_json.len() > MAX_CLIENT_DATA
            || self.signature.is_empty()
            || self.signature.len() > MAX_SIGNATURE
        {
            return Err(WebAuthnError::Malformed("an assertion part is empty or too long".into()));
        }
        Ok(self)
    }

    /// Compact bytes: each of the first two parts with a 2-byte big-endian length,
    /// then the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for part in [&self.authenticator_data, &self.client_data_json] {
            // Lengths are bounded far below u16::MAX by `checked`.
            bytes.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Parses [`Assertion::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let malformed = || WebAuthnError::Malformed("a passkey assertion does not parse".into());
        let mut rest = bytes;
        let mut take = || -> Result<Vec<u8>, WebAuthnError> {
            let (len, tail) = rest.split_first_chunk::<2>().ok_or_else(malformed)?;
            let len = usize::from(u16::from_be_bytes(*len));
            let part = tail.get(..len).ok_or_else(malformed)?;
            rest = tail.get(len..).ok_or_else(malformed)?;
            Ok(part.to_vec())
        };
        let authenticator_data = take()?;
        let client_data_json = take()?;
        Assertion { authenticator_data, client_data_json, signature: rest.to_vec() }.checked()
    }

    /// The text form: `<authenticatorData hex>.<clientDataJSON hex>.<signature hex>`.
    pub fn to_text(&self) -> String {
        format!(
            "{}.{}.{}",
            hex::encode(&self.authenticator_data),
            hex::encode(&self.client_data_json),
            hex::encode(&self.signature)
        )
    }

    /// Parses [`Assertion::to_text`].
    pub fn from_text(text: &str) -> Result<Self, WebAuthnError> {
        let malformed = || {
            WebAuthnError::Malformed("an assertion is <authenticatorData>.<clientDataJSON>.<signature> in hex".into())
        };
        let mut parts = text.split('.');
        let (Some(data), Some(client), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if text.len() > 2 * (MAX_AUTHENTICATOR_DATA + MAX_CLIENT_DATA + MAX_SIGNATURE) + 2 {
            return Err(malformed());
        }
        let decode = |part: &str| hex::decode(part).map_err(|_| malformed());
        Assertion {
            authenticator_data: decode(data)?,
            client_data_json: decode(client)?,
            signature: decode(signature)?,
        }
        .checked()
    }
}

/// Base64url without padding (RFC 4648 §5), as WebAuthn encodes the challenge.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let symbol = |index: u32| char::from(ALPHABET.get((index & 63) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let triple = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(symbol(triple >> 18));
        out.push(symbol(triple >> 12));
        if chunk.len() > 1 {
            out.push(symbol(triple >> 6));
        }
        if chunk.len() > 2 {
            out.push(symbol(triple));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use proptest::prelude::*;

    const ORIGIN: &str = "http://localhost:3100";

    /// A software authenticator for the tests.
    struct Authenticator {
        key: p256::ecdsa::SigningKey,
        count: u32,
    }

    impl Authenticator {
        fn new(seed: u8) -> Self {
            Authenticator { key: p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(), count: 0 }
        }

        fn public(&self) -> PasskeyKey {
            let point = self.key.verifying_key().to_sec1_point(false);
            PasskeyKey::new(point.as_bytes(), ORIGIN, b"cred-1").unwrap()
        }

        fn assert_with(&mut self, client: &str, rp_id: &str, flags: u8) -> Assertion {
            self.count += 1;
            let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
            data.push(flags);
            data.extend_from_slice(&self.count.to_be_bytes());
            let mut signed = data.clone();
            signed.extend_from_slice(&Sha256::digest(client.as_bytes()));
            let signature: p256::ecdsa::Signature = self.key.sign(&signed);
            Assertion {
                authenticator_data: data,
                client_data_json: client.as_bytes().to_vec(),
                signature: signature.to_der().as_bytes().to_vec(),
            }
        }

        fn assert(&mut self, message: &str) -> Assertion {
            let client = client_data("webauthn.get", &base64url(&Sha256::digest(message.as_bytes())), ORIGIN);
            self.assert_with(&client, "localhost", FLAG_UP | FLAG_UV)
        }
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> String {
        format!(
            r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}","crossOrigin":false,"other_keys_can_be_added_here":"x"}}"#
        )
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        // RFC 4648 §10 vectors, without padding, and the URL-safe alphabet.
        for (input, output) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), output);
        }
        assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
    }

    #[test]
    fn a_p256_spki_from_a_browser_parses() {
        // The SPKI of the P-256 generator point (a fixed, published point): prefix || 04 || x || y.
        let x = hex::decode("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296").unwrap();
        let y = hex::decode("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5").unwrap();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.push(4);
        spki.extend_from_slice(&x);
        spki.extend_from_slice(&y);
        let key = PasskeyKey::from_spki(&spki, "https://wallet.example.com", &[1, 2]).unwrap();
        assert_eq!(key.to_string().parse::<PasskeyKey>().unwrap(), key);
        assert!(key.to_string().starts_with("webauthn:046b17d1"));
        spki[30] ^= 1;
        assert!(PasskeyKey::from_spki(&spki, "https://wallet.example.com", &[1]).is_err(), "not on the curve");
        assert!(PasskeyKey::from_spki(&spki[1..], "https://wallet.example.com", &[1]).is_err());
    }

    #[test]
    fn origins_are_https_or_localhost_with_a_dns_host() {
        for good in ["https://example.com", "https://a.b-c.example:8443", "http://localhost:3100", "http://localhost"] {
            origin_host(good).unwrap();
        }
        for bad in [
            "http://example.com",
            "https://Example.com",
            "https://example.com/",
            "https://ex ample.com",
            "https://-x.com",
            "https://x.com:",
            "https://x.com:123456",
            "ftp://x.com",
            "https://",
            "https://a..b",
        ] {
            assert!(origin_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_assertion_verifies_only_for_its_text_origin_rp_and_flags() {
        let mut device = Authenticator::new(7);
        let key = device.public();
        let text = "Mandate owner decision v1\naction: approve";
        let good = device.assert(text);
        assert_eq!(key.verify(text.as_bytes(), &good), Ok(1));
        let other = Authenticator::new(8).public();
        assert_eq!(other.verify(text.as_bytes(), &good), Err(WebAuthnError::Refused("the signature does not verify")));
        assert_eq!(
            key.verify(b"another text", &good),
            Err(WebAuthnError::Refused("the challenge is not SHA-256 of this text"))
        );
        let challenge = base64url(&Sha256::digest(text.as_bytes()));
        for (client, rp, flags, why) in [
            (client_data("webauthn.create", &challenge, ORIGIN), "localhost", FLAG_UP | FLAG_UV, "webauthn.get"),
            (
                client_data("webauthn.get", &challenge, "http://localhost:3101"),
                "localhost",
                FLAG_UP | FLAG_UV,
                "origin",
            ),
            (client_data("webauthn.get", &challenge, ORIGIN), "example.com", FLAG_UP | FLAG_UV, "rpIdHash"),
            (client_data("webauthn.get", &challenge, ORIGIN), "localhost", FLAG_UP, "UV"),
            (client_data("webauthn.get", &challenge, ORIGIN), "localhost", FLAG_UV, "UP"),
            (client_data("webauthn.get", &challenge, ORIGIN).replace("false", "true"), "localhost", 5, "origin"),
        ] {
            let refused = key.verify(text.as_bytes(), &device.assert_with(&client, rp, flags)).unwrap_err();
            assert!(refused.to_string().contains(why), "{why}: {refused}");
        }
        // A duplicated member cannot smuggle a second origin past the check.
        let twice = format!(
            r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","origin":"https://evil.example"}}"#
        );
        assert!(matches!(
            key.verify(text.as_bytes(), &device.assert_with(&twice, "localhost", 5)),
            Err(WebAuthnError::Malformed(_))
        ));
        // Any change to the signed bytes breaks the signature.
        let mut flipped = device.assert(text);
        flipped.authenticator_data[36] ^= 1;
        assert_eq!(key.verify(text.as_bytes(), &flipped), Err(WebAuthnError::Refused("the signature does not verify")));
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AuthenticatorData::parse(&bytes);
            let _ = ClientData::parse(&bytes);
            let _ = Assertion::from_bytes(&bytes);
            let _ = PasskeyKey::from_spki(&bytes, ORIGIN, b"c");
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = Assertion::from_text(text);
                let _ = text.parse::<PasskeyKey>();
                let _ = origin_host(text);
            }
        }

        #[test]
        fn assertions_round_trip_in_both_forms(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            client in proptest::collection::vec(any::<u8>(), 0..300),
            signature in proptest::collection::vec(any::<u8>(), 1..=72),
        ) {
            let assertion = Assertion { authenticator_data: data, client_data_json: client, signature };
            prop_assert_eq!(Assertion::from_bytes(&assertion.to_bytes()).unwrap(), assertion.clone());
            prop_assert_eq!(Assertion::from_text(&assertion.to_text()).unwrap(), assertion);
        }

        #[test]
        fn authenticator_data_parses_its_fields(hash in any::<[u8; 32]>(), flags in any::<u8>(), count in any::<u32>(),
                                                 tail in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut bytes = hash.to_vec();
            bytes.push(flags);
            bytes.extend_from_slice(&count.to_be_bytes());
            bytes.extend_from_slice(&tail);
            let parsed = AuthenticatorData::parse(&bytes);
            let acceptable = flags & FLAG_AT == 0 && (tail.is_empty() || flags & FLAG_ED != 0);
            prop_assert_eq!(parsed.is_ok(), acceptable);
            if let Ok(parsed) = parsed {
                prop_assert_eq!(parsed, AuthenticatorData { rp_id_hash: hash, flags, sign_count: count });
            }
        }

        #[test]
        fn any_single_byte_change_to_an_assertion_is_refused(index in 0usize..400, bit in 0u8..8) {
            let mut device = Authenticator::new(9);
            let key = device.public();
            let good = device.assert("text");
            let mut bytes = good.to_bytes();
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            if let Ok(changed) = Assertion::from_bytes(&bytes) {
                prop_assert!(key.verify(b"text", &changed).is_err());
            }
        }
    }
}
