// The dashboard's only script, served by the daemon itself (CSP: script-src 'self').
// It signs owner texts where the owner is: with a passkey (WebAuthn, the challenge is
// SHA-256 of the exact text on the page) or a browser wallet (EIP-191 personal_sign of
// the text), fills the form's signature and submits it. The daemon verifies every
// signature; nothing here is trusted by it. No key ever reaches this page.
'use strict';

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (text) => new Uint8Array(text.match(/../g).map((pair) => parseInt(pair, 16)));
const utf8 = (text) => new TextEncoder().encode(text);
const sha256 = async (text) => new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(text)));

function textOf(form) {
  const source = document.getElementById(form.dataset.message);
  if (!source) throw new Error('the text to sign is missing from the page');
  return source.textContent;
}

function report(form, error) {
  let box = form.querySelector('.sign-error');
  if (!box) {
    box = document.createElement('p');
    box.className = 'error sign-error';
    form.appendChild(box);
  }
  box.textContent = String(error && error.message ? error.message : error);
}

/** An assertion by one of `credentials` ([{credential, key}]) over `text`: the owner signature text. */
async function passkeySignature(text, credentials) {
  const assertion = await navigator.credentials.get({
    publicKey: {
      challenge: await sha256(text),
      rpId: location.hostname,
      allowCredentials: credentials.map((c) => ({ type: 'public-key', id: unhex(c.credential) })),
      userVerification: 'required',
      timeout: 120000,
    },
  });
  const id = hex(assertion.rawId);
  const owner = credentials.find((c) => c.credential === id);
  if (!owner) throw new Error('this passkey is not an owner of the wallet');
  const r = assertion.response;
  return `${owner.key}:${hex(r.authenticatorData)}.${hex(r.clientDataJSON)}.${hex(r.signature)}`;
}

async function walletSignature(text) {
  if (!window.ethereum || typeof window.ethereum.request !== 'function') {
    throw new Error('no browser wallet (window.ethereum) in this browser');
  }
  const accounts = await window.ethereum.request({ method: 'eth_requestAccounts' });
  const address = accounts && accounts[0];
  if (!address) throw new Error('the browser wallet gave no account');
  const signature = await window.ethereum.request({ method: 'personal_sign', params: ['0x' + hex(utf8(text)), address] });
  return `eip191:${address}:${signature}`;
}

async function sign(form, how) {
  const text = textOf(form);
  const credentials = JSON.parse(form.dataset.passkeys || '[]');
  const signature = how === 'passkey' ? await passkeySignature(text, credentials) : await walletSignature(text);
  form.elements.signature.value = signature;
  form.submit();
}

async function registerPasskey(form) {
  const wallet = form.dataset.wallet;
  const created = await navigator.credentials.create({
    publicKey: {
      rp: { id: location.hostname, name: 'Mandate' },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name: `owner of ${wallet}`, displayName: 'Mandate owner' },
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
      attestation: 'none',
      timeout: 120000,
    },
  });
  const response = created.response;
  if (typeof response.getPublicKey !== 'function' || response.getPublicKeyAlgorithm() !== -7) {
    throw new Error('this browser or passkey does not give an ES256 (P-256) public key');
  }
  const spki = new Uint8Array(response.getPublicKey());
  const credential = hex(created.rawId);
  const key = `webauthn:${hex(spki.slice(-65))}@${location.origin}#${credential}`;
  // Proof that the key is this passkey's: a first assertion over the registration text.
  const text = `Mandate passkey registration v1\nwallet: ${wallet}\nkey: ${key}`;
  form.elements.spki.value = hex(spki);
  form.elements.credential.value = credential;
  form.elements.signature.value = await passkeySignature(text, [{ credential, key }]);
  form.submit();
}

document.addEventListener('DOMContentLoaded', () => {
  // Moments are rendered in UTC; show them in the browser's time zone (UTC in the title).
  for (const time of document.querySelectorAll('time[datetime]')) {
    const moment = new Date(time.dateTime);
    if (!Number.isNaN(moment.getTime())) {
      time.title = time.textContent;
      time.textContent = moment.toLocaleString();
    }
  }
  for (const button of document.querySelectorAll('button[data-sign]')) {
    button.addEventListener('click', () => {
      const form = button.closest('form');
      button.disabled = true;
      sign(form, button.dataset.sign).catch((error) => {
        button.disabled = false;
        report(form, error);
      });
    });
  }
  for (const button of document.querySelectorAll('button[data-register-passkey]')) {
    button.addEventListener('click', () => {
      const form = button.closest('form');
      button.disabled = true;
      registerPasskey(form).catch((error) => {
        button.disabled = false;
        report(form, error);
      });
    });
  }
});
