//! Passkey (WebAuthn) owners: assertions made by a software authenticator in this
//! process, posted to the daemon and, through a tampered daemon, to the cosigner.
//! Each check (challenge, origin, RP id, UV flag, counter) is attacked separately.
//! The browser flow (registration and approval in Chromium with a virtual
//! authenticator) is in `dashboard.rs`.

use p256::ecdsa::signature::Signer;
use serde_json::json;
use sha2::{Digest, Sha256};

use mandate_chain::approval::{ApprovedTx, DecisionAction, OwnerDecision, OwnerKey, OwnerSignature, SignedDecision};
use mandate_chain::webauthn::{base64url, Assertion, PasskeyKey};
use mandate_chain::UnsignedTx;

use crate::approvals::tampered_sign;
use crate::{code, eth, recipient, CosignerMode, Daemon};

const ORIGIN: &str = "https://owner.example";

/// A software authenticator (what a phone's passkey does).
pub(crate) struct Authenticator {
    key: p256::ecdsa::SigningKey,
    pub(crate) count: u32,
    origin: String,
}

impl Authenticator {
    pub(crate) fn new(seed: u8, origin: &str) -> Self {
        Authenticator {
            key: p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
            count: 0,
            origin: origin.into(),
        }
    }

    pub(crate) fn owner_key(&self) -> OwnerKey {
        let point = self.key.verifying_key().to_sec1_point(false);
        OwnerKey::Passkey(Box::new(PasskeyKey::new(point.as_bytes(), &self.origin, b"credential-1").unwrap()))
    }

    /// An assertion over `text`, with `client` and `flags` as given (for tampering).
    fn assertion(&mut self, client: &str, rp_id: &str, flags: u8) -> Assertion {
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

    fn client(challenge_text: &str, origin: &str) -> String {
        let challenge = base64url(&Sha256::digest(challenge_text.as_bytes()));
        format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{origin}","crossOrigin":false}}"#)
    }

    /// The owner signature over `text` as a browser would make it, or tampered.
    pub(crate) fn sign(&mut self, text: &str, tamper: Tamper) -> OwnerSignature {
        let host = self.origin.split("://").nth(1).unwrap().split(':').next().unwrap().to_string();
        let origin = self.origin.clone();
        let assertion = match tamper {
            Tamper::None => self.assertion(&Self::client(text, &origin), &host, 0x05),
            Tamper::Challenge(other) => self.assertion(&Self::client(other, &origin), &host, 0x05),
            Tamper::Origin(other) => self.assertion(&Self::client(text, other), &host, 0x05),
            Tamper::RpId(other) => self.assertion(&Self::client(text, &origin), other, 0x05),
            Tamper::NoUserVerification => self.assertion(&Self::client(text, &origin), &host, 0x01),
        };
        OwnerSignature { key: self.owner_key(), signature: assertion.to_bytes() }
    }
}

/// How an assertion is tampered with.
pub(crate) enum Tamper<'a> {
    None,
    Challenge(&'a str),
    Origin(&'a str),
    RpId(&'a str),
    NoUserVerification,
}

#[test]
fn passkey_assertions_are_verified_by_the_daemon_and_by_the_cosigner() {
    let daemon = Daemon::start(CosignerMode::External);
    let (wallet, address) = daemon.wallet("passkey", "20");
    let mut phone = Authenticator::new(11, ORIGIN);
    let key = phone.owner_key().to_string();
    assert!(key.starts_with("webauthn:04") && key.contains("@https://owner.example#"), "{key}");
    let (ok, added) = daemon.cli(&["owner", "add", "--wallet", &wallet, "--passkey", &key, "--label", "phone"]);
    assert!(ok && added["added"] == true, "{added}");
    // Malformed passkeys are refused at registration.
    for bad in [key.replace("https://owner.example", "http://owner.example"), key.replace("#", "")] {
        let (ok, refused) = daemon.cli(&["owner", "add", "--wallet", &wallet, "--passkey", &bad]);
        assert!(!ok && code(&refused) == "INVALID_INPUT", "{bad}: {refused}");
    }
    let limits = format!(
        "frozen = false\n[default]\nper_tx_max = \"5000000000000000000\"\ndaily_max = \"50000000000000000000\"\n\
         approval_above = \"{}\"\nowners = [\"{key}\"]\n",
        eth("1")
    );
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "big", "type": "tiers", "approval_above": "1"}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let payee = recipient();
    let (status, held) = daemon.send(&agent, &wallet, payee, "1.5");
    assert_eq!(status, 202, "{held}");
    let id = held["id"].as_str().unwrap().to_string();
    let (_, offer) = daemon.call("GET", &format!("/v1/owner/approvals/{id}"), None, None);
    let text = offer["approve_message"].as_str().unwrap().to_string();
    let deny_text = offer["deny_message"].as_str().unwrap().to_string();
    let post = |signature: &OwnerSignature| {
        daemon.call(
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            None,
            Some(&json!({"signature": signature.to_string()})),
        )
    };

    // Each check, attacked alone, refuses the approval at the daemon.
    for (tamper, why) in [
        (Tamper::Challenge(&deny_text), "challenge"),
        (Tamper::Origin("https://evil.example"), "origin"),
        (Tamper::RpId("evil.example"), "rpIdHash"),
        (Tamper::NoUserVerification, "UV"),
    ] {
        let (status, refused) = post(&phone.sign(&text, tamper));
        assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{why}: {refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains(why), "{why}: {refused}");
    }
    // Another passkey's valid assertion under this key: the signature does not verify.
    let mut stranger = Authenticator::new(12, ORIGIN);
    let forged = OwnerSignature { key: phone.owner_key(), signature: stranger.sign(&text, Tamper::None).signature };
    let (_, refused) = post(&forged);
    assert_eq!(code(&refused), "OWNER_SIGNATURE_INVALID", "{refused}");
    // The genuine assertion approves; the send confirms, the cosigner having verified it too.
    let (status, approved) = post(&phone.sign(&text, Tamper::None));
    assert_eq!((status, approved["status"].as_str()), (200, Some("approved")), "{approved}");
    assert_eq!(daemon.wait_final(&agent, &id)["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(payee), eth("1.5"));

    // A counter that went back (a cloned authenticator) is refused on the next item.
    let (status, second) = daemon.send(&agent, &wallet, recipient(), "1.2");
    assert_eq!(status, 202, "{second}");
    let second = second["id"].as_str().unwrap().to_string();
    let (_, offer) = daemon.call("GET", &format!("/v1/owner/approvals/{second}"), None, None);
    let second_text = offer["approve_message"].as_str().unwrap().to_string();
    phone.count = 1;
    let (status, refused) = daemon.call(
        "POST",
        &format!("/v1/approvals/{second}/approve"),
        None,
        Some(&json!({"signature": phone.sign(&second_text, Tamper::None).to_string()})),
    );
    assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("counter"), "{refused}");

    // A daemon forwarding tampered assertions is refused by the cosigner, which checks
    // the passkey against its own limits.toml.
    let chain = daemon.anvil.chain_id();
    let nonce = daemon.anvil.nonce(address);
    let big = UnsignedTx::new(chain, nonce, recipient(), eth("1.5"), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
    let decision = OwnerDecision {
        action: DecisionAction::Approve,
        item: "tx_passkey_tampered".into(),
        wallet: wallet.clone(),
        tx: Some(ApprovedTx::new(chain, big.to().unwrap(), big.value(), big.input(), big.gas_limit(), 2_000_000_000)),
        expires_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600,
    };
    let message = decision.message();
    phone.count = 100;
    for tamper in
        [Tamper::Challenge("another text"), Tamper::Origin("https://evil.example"), Tamper::NoUserVerification]
    {
        let signed = SignedDecision::single(decision.clone(), phone.sign(&message, tamper));
        let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&signed));
        assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("passkey"), "{refused}");
    }
    let signed = SignedDecision::single(decision.clone(), phone.sign(&message, Tamper::None));
    let (ok, out) = tampered_sign(&daemon, &wallet, &big, Some(&signed));
    assert!(ok, "the cosigner signs with a genuine passkey approval: {out}");
}
