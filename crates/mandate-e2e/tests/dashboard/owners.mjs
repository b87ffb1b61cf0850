// Drives Debian's Chromium (headless, playwright-core) through the owner flows that
// sign in the browser: a passkey registered in the dashboard on a virtual
// authenticator (Chrome DevTools Protocol WebAuthn domain: CTAP2, internal transport,
// user verification), then an approval with it; and an approval with a browser
// wallet, a scripted window.ethereum provider that returns the signature the test
// made with its known key. Talks to the test over stdin/stdout, one JSON line each
// way: {"step":"registered","key"} then {"passkey_item","wallet_item","address",
// "signature","message"}; last line {"ok", …}. Screenshots go to SHOTS.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const { DASH_URL, DASH_PASSWORD, WALLET, SHOTS } = process.env;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function statusOf(page, item) {
  let status = '';
  for (let i = 0; i < 120; i++) {
    await page.goto(`${DASH_URL}/dashboard/approvals/${item}`);
    status = ((await page.textContent('#status')) || '').trim();
    if (status === 'confirmed' || status === 'failed') break;
    await page.waitForTimeout(500);
  }
  return status;
}

async function refusal(page) {
  return (await page.locator('.error').count()) > 0 ? (await page.textContent('.error')) || 'error' : null;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const page = await browser.newPage();
  const external = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(DASH_URL)) external.push(request.url());
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await page.goto(`${DASH_URL}/dashboard`);
  await page.fill('input[name=password]', DASH_PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);

  // Register a passkey owner on this device.
  await page.goto(`${DASH_URL}/dashboard/wallets/${WALLET}`);
  if ((await page.locator('input[name=label]').count()) === 0) {
    throw new Error(`no registration form: ${((await page.textContent('body')) || '').slice(0, 400)}`);
  }
  await page.fill('input[name=label]', 'virtual phone');
  await Promise.all([page.waitForNavigation(), page.click('button[data-register-passkey]')]);
  const refused = await refusal(page);
  if (refused) throw new Error(`registration refused: ${refused}`);
  const keys = await page.locator('code.owner-key').allTextContents();
  const key = keys.find((k) => k.startsWith('webauthn:'));
  if (!key) throw new Error(`no passkey owner listed: ${JSON.stringify(keys)}`);
  await page.screenshot({ path: `${SHOTS}/dashboard-passkey-registered.png`, fullPage: true });
  console.log(JSON.stringify({ step: 'registered', key }));

  const next = JSON.parse((await lines.next()).value);

  // Approve with the passkey.
  await page.goto(`${DASH_URL}/dashboard/approvals/${next.passkey_item}`);
  const quorum = ((await page.textContent('#quorum')) || '').trim();
  await page.screenshot({ path: `${SHOTS}/dashboard-passkey-pending.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.locator('button[data-sign=passkey]').first().click()]);
  const passkeyRefused = await refusal(page);
  if (passkeyRefused) throw new Error(`passkey approval refused: ${passkeyRefused}`);
  const confirmation = ((await page.textContent('#confirmation')) || '').trim();
  await page.screenshot({ path: `${SHOTS}/dashboard-passkey-confirmation.png`, fullPage: true });
  const passkeyStatus = await statusOf(page, next.passkey_item);
  await page.screenshot({ path: `${SHOTS}/dashboard-passkey-approved.png`, fullPage: true });

  // Approve with a browser wallet: a scripted provider with the test's key.
  await page.goto(`${DASH_URL}/dashboard/approvals/${next.wallet_item}`);
  await page.evaluate(({ address, signature, message }) => {
    const expected = '0x' + Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, '0')).join('');
    window.ethereum = {
      request: async ({ method, params }) => {
        if (method === 'eth_requestAccounts') return [address];
        if (method === 'personal_sign') {
          if (params[0] !== expected || params[1] !== address) throw new Error('asked to sign another text');
          return signature;
        }
        throw new Error(`unsupported ${method}`);
      },
    };
  }, next);
  await Promise.all([page.waitForNavigation(), page.locator('button[data-sign=ethereum]').first().click()]);
  const walletRefused = await refusal(page);
  if (walletRefused) throw new Error(`browser-wallet approval refused: ${walletRefused}`);
  const walletStatus = await statusOf(page, next.wallet_item);
  await page.screenshot({ path: `${SHOTS}/dashboard-wallet-approved.png`, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ ok: true, key, quorum, confirmation, passkey_status: passkeyStatus, wallet_status: walletStatus, external }));
  process.exit(0);
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error && error.stack ? error.stack : error) }));
  process.exit(1);
});
