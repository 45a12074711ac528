// Drives the chat widget in Debian's headless Chromium through
// playwright-core, for widget_browser_test.go: a visitor opens the widget on
// the demo page, starts a chat, writes, reads an agent's answer and ends the
// chat. Every wait is on a condition of the page, bounded by Playwright's
// timeout; a failed check throws and the script exits non-zero. The last
// line printed is JSON: {"conversation_id": …}.
//
// Environment: BASE_URL, WIDGET_TOKEN, API_KEY (an org API key, to answer as
// an agent), NODE_TOOLS (tools/node), CHROMIUM.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_TOOLS, 'package.json'));
const { chromium } = require('playwright-core');

const base = process.env.BASE_URL;
const problems = [];
function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
});
let page;
try {
  page = await browser.newPage();
  // A bound for a hung page, not a speed check: the whole test suite runs
  // beside this browser on a small machine.
  page.setDefaultTimeout(60000);
  page.on('pageerror', (err) => problems.push('page error: ' + err.message));
  page.on('console', (m) => {
    // A missing favicon is the browser's own request, not the widget's.
    if (m.type() === 'error' && !/status of 404/.test(m.text())) problems.push('console error: ' + m.text().slice(0, 200));
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  await page.goto(`${base}/chat/demo?token=${process.env.WIDGET_TOKEN}`);

  const open = page.getByRole('button', { name: 'Chat with us' });
  await open.click();
  const dialog = page.getByRole('dialog', { name: 'Chat with us' });
  await dialog.waitFor();
  check(await open.getAttribute('aria-expanded') === 'true', 'the button says the window is open');
  check(await page.getByLabel('First name').evaluate((e) => e === document.activeElement), 'focus moves to the first field');

  // Until the chat has started only its start form shows (the message
  // form has nothing to send to yet).
  const message = page.getByRole('textbox', { name: 'Message', exact: true });
  check(!(await message.isVisible()), 'the message form is hidden before the chat starts');
  await page.getByLabel('First name').fill('Ada');
  await page.getByLabel('Last name').fill('Lovelace');
  await page.getByLabel('Email').fill('ada@example.org');
  await page.getByRole('button', { name: 'Start chat' }).click();
  await message.waitFor();
  check(!(await page.getByRole('button', { name: 'Start chat' }).isVisible()), 'the start form is hidden once the chat started');
  await message.fill('Do you have <b>evening</b> classes?');
  await page.getByRole('button', { name: 'Send' }).click();
  const log = page.getByRole('log', { name: 'Conversation' });
  await log.getByText('Do you have <b>evening</b> classes?').waitFor(); // shown as text, not HTML
  check(await log.locator('b:text("evening")').count() === 0, 'message text is not rendered as HTML');

  const session = JSON.parse(await page.evaluate((t) => sessionStorage.getItem('sbchat:' + t), process.env.WIDGET_TOKEN));
  check(session && session.conversation_id, 'the session is kept for page reloads');
  const r = await page.request.post(`${base}/v1/chat/conversations/${session.conversation_id}/messages`, {
    headers: { Authorization: 'Bearer ' + process.env.API_KEY },
    data: { speaker: 'agent', name: 'Grace', text: 'Yes, on Tuesdays.' },
  });
  check(r.status() === 201, 'agent answer: status ' + r.status());
  await log.getByText('Yes, on Tuesdays.').waitFor();

  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  check(await open.getAttribute('aria-expanded') === 'false', 'Escape closes the window');
  check(await open.evaluate((e) => e === document.activeElement), 'focus returns to the button');

  await page.reload();
  await page.getByRole('button', { name: 'Chat with us' }).click();
  await page.getByRole('log', { name: 'Conversation' }).getByText('Yes, on Tuesdays.').waitFor(); // resumed after a reload
  await page.getByRole('button', { name: 'End chat' }).click();
  await page.getByRole('status').getByText('This chat has ended').waitFor();

  check(problems.length === 0, problems.join('; '));
  console.log(JSON.stringify({ conversation_id: session.conversation_id }));
} catch (err) {
  // What the page said, for the failure's report.
  const status = page ? await page.locator('.sbchat-status').textContent().catch(() => '?') : '?';
  console.error(`widget status line: ${JSON.stringify(status)}; problems seen: ${problems.join('; ') || 'none'}`);
  throw err;
} finally {
  await browser.close();
}
