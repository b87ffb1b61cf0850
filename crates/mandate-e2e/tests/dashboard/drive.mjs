// Drives Debian's Chromium (headless, through playwright-core) through the owner
// dashboard: sign in, open the pending item, check its decoded recipient and amount
// and the approval message, paste the owner's signature, approve, wait for
// `confirmed`. Screenshots go to SHOTS. Prints one JSON line; exits 1 on failure.
import { chromium } from 'playwright-core';

const { DASH_URL, DASH_PASSWORD, ITEM, RECIPIENT, AMOUNT, MESSAGE, SIGNATURE, SHOTS, WALLET, FAILED } = process.env;

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
  await page.goto(`${DASH_URL}/dashboard`);
  await page.fill('input[name=password]', DASH_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  const signedIn = (await page.textContent('body')) || '';
  if (!signedIn.includes('Pending approvals')) {
    const cookies = await page.context().cookies();
    throw new Error(`sign-in failed: ${signedIn.slice(0, 300)} cookies=${JSON.stringify(cookies.map((c) => c.name))}`);
  }
  await page.screenshot({ path: `${SHOTS}/dashboard-overview.png`, fullPage: true });
  await page.click(`a[href="/dashboard/approvals/${ITEM}"]`);
  await page.waitForSelector('#approval-message');
  const action = (await page.textContent('#action')) || '';
  const recipient = (await page.textContent('#recipient')) || '';
  const message = (await page.textContent('#approval-message')) || '';
  await page.screenshot({ path: `${SHOTS}/dashboard-pending.png`, fullPage: true });
  if (!action.includes(AMOUNT) || !action.includes(RECIPIENT) || recipient.trim() !== RECIPIENT) {
    throw new Error(`decoded action not shown: ${action} / ${recipient}`);
  }
  if (message !== MESSAGE) throw new Error(`approval message differs:\n${message}\n---\n${MESSAGE}`);
  await page.fill('textarea[name=signature]', SIGNATURE);
  await page.click('button[value=approve]');
  let status = '';
  for (let i = 0; i < 120; i++) {
    status = ((await page.textContent('#status')) || '').trim();
    if (status === 'confirmed' || status === 'failed') break;
    await page.waitForTimeout(500);
    await page.reload();
  }
  await page.screenshot({ path: `${SHOTS}/dashboard-approved.png`, fullPage: true });
  // The other pages, as an owner sees them.
  await page.goto(`${DASH_URL}/dashboard/wallets/${WALLET}`);
  await page.waitForSelector('#spend-chart rect.used');
  await page.screenshot({ path: `${SHOTS}/dashboard-wallet.png`, fullPage: true });
  await page.goto(`${DASH_URL}/dashboard/approvals/${FAILED}`);
  await page.waitForSelector('#why');
  await page.screenshot({ path: `${SHOTS}/dashboard-failed.png`, fullPage: true });
  await page.goto(`${DASH_URL}/dashboard/webhooks`);
  await page.waitForSelector('table.deliveries');
  await page.screenshot({ path: `${SHOTS}/dashboard-webhooks.png`, fullPage: true });
  await page.goto(`${DASH_URL}/dashboard/audit?logins=hide`);
  await page.screenshot({ path: `${SHOTS}/dashboard-audit.png`, fullPage: true });
  // The policy editor: lower the approval threshold, check (diff, the sample action
  // explained under both versions), save.
  await page.goto(`${DASH_URL}/dashboard/wallets/${WALLET}`);
  await page.click('#edit-policy');
  await page.waitForSelector('#policy-editor');
  const doc = await page.inputValue('#policy-editor textarea[name=document]');
  if (!doc.includes('"approval_above": "1"')) throw new Error(`unexpected document: ${doc}`);
  await page.fill('#policy-editor textarea[name=document]', doc.replace('"approval_above": "1"', '"approval_above": "0.25"'));
  await page.fill('#policy-editor textarea[name=sample]', JSON.stringify({ type: 'transfer', to: RECIPIENT, amount: '0.5' }));
  await page.screenshot({ path: `${SHOTS}/dashboard-policy-editor.png`, fullPage: true });
  await page.click('#policy-editor button[type=submit]');
  await page.waitForSelector('#explain');
  const proposed = ((await page.textContent('#explain-proposed')) || '').trim();
  const current = ((await page.textContent('#explain-current')) || '').trim();
  const diff = (await page.textContent('#policy-diff')) || '';
  await page.screenshot({ path: `${SHOTS}/dashboard-policy-check.png`, fullPage: true });
  await page.click('#policy-save button[type=submit]');
  await page.waitForSelector('#spend-chart');
  const saved = ((await page.textContent('body')) || '').includes('Policy (version 2)');
  await browser.close();
  console.log(JSON.stringify({ ok: true, action, recipient: recipient.trim(), status, external, proposed, current, diff, saved }));
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error && error.stack ? error.stack : error) }));
  process.exit(1);
});
