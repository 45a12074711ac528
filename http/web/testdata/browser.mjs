// Browser scenarios for Switchboard's web UI, run by browser_test.go in
// Debian's headless Chromium through playwright-core. Every wait is on a
// condition of the page, bounded by Playwright's timeout; a failed check
// throws, and the script exits non-zero.
//
// Environment: BASE_URL (a running Switchboard with the UI), ARTIFACTS
// (screenshot folder), SEED (JSON: users, password, gateway, contacts),
// NODE_TOOLS (tools/node, where playwright-core is installed), CHROMIUM.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_TOOLS, 'package.json'));
const { chromium } = require('playwright-core');

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
const seed = JSON.parse(process.env.SEED);
const { ana, ben, cy } = seed.contacts;

let shots = 0;
let current = null; // the page a failure is shown on
const problems = [];

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

async function shot(page, name) {
  shots++;
  const file = path.join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function step(name, fn) {
  const started = Date.now();
  await fn();
  console.log(`ok  ${name} (${Date.now() - started} ms)`);
}

function watch(page) {
  if (process.env.DEBUG_UI) {
    page.on('response', (r) => console.log('  <-', r.status(), r.request().method(), r.url().replace(base, '')));
    page.on('console', (m) => console.log('  console', m.type(), m.text().slice(0, 300)));
  }
  const note = (p) => { if (!problems.includes(p)) problems.push(p); };
  page.on('pageerror', (err) => note(`page error on ${page.url()}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
      note(`CSP violation on ${new URL(page.url()).pathname}: ${msg.text().slice(0, 160)}`);
    }
  });
}

async function signIn(page, role, password = seed.password) {
  if (!page.url().includes('/ui/login')) await page.goto(base + '/ui/login');
  await page.getByLabel('Email address').fill(seed.users[role]);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/ui\/login/);
}

async function text(page, from, to, body) {
  const r = await page.request.post(base + '/sim/v1/inbound', { data: { from, to, body } });
  check(r.status() === 200, `handset text: status ${r.status()}`);
}

const conversation = (c) => `${base}/ui/conversation?record=${encodeURIComponent(c.id)}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(30000);
  const page = await context.newPage();
  current = page;
  watch(page);

  await step('sign-in page; a wrong password is refused', async () => {
    await page.goto(base + '/');
    await page.waitForURL(/\/ui\/login/);
    await shot(page, 'login');
    await signIn(page, 'admin', 'not the password');
    await page.getByRole('alert').filter({ hasText: 'not right' }).waitFor();
    check(page.url().includes('/ui/login'), 'still on the sign-in page after a wrong password');
    await shot(page, 'login-wrong-password');
  });

  await step('sign in as System Admin', async () => {
    await signIn(page, 'admin');
    await page.waitForURL(base + '/ui/');
    await page.getByRole('heading', { name: 'Conversations' }).waitFor();
    await shot(page, 'home');
  });

  await step('CSRF: changes without the session token are refused', async () => {
    for (const form of [{ csrf: 'forged' }, {}]) {
      const r = await page.request.post(base + '/ui/settings/api-key', { form });
      check(r.status() === 403, `POST with csrf=${form.csrf ?? '(none)'}: status ${r.status()}, want 403`);
    }
    // A plain form (not htmx) with a forged token, submitted by the browser.
    await page.goto(base + '/ui/settings');
    await page.evaluate(() => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = '/ui/settings/api-key';
      f.innerHTML = '<input type="hidden" name="csrf" value="forged">';
      document.body.appendChild(f);
      f.submit();
    });
    await page.getByText('this form has expired').waitFor();
    await shot(page, 'csrf-rejected');
  });

  await step('setup assistant shows each step\'s state', async () => {
    await page.goto(base + '/ui/settings');
    const state = (id) => page.locator(`#${id} h2 .state`).innerText();
    check(await state('api-key') === 'Done', 'API key step done (the org has a key)');
    check(await state('crm') === 'Done', 'CRM step done (built-in CRM)');
    check(await state('bulk-api') === 'Needs action', 'bulk API toggle needs action');
    check(await state('incoming') === 'Needs action', 'connected app toggle needs action');
    check(await state('gateways') === 'Done', 'gateway step done');
    check(await page.locator('#toggle-connected_app_for_incoming').isDisabled(), 'connected app waits for the bulk API');
    await shot(page, 'settings');

    await page.getByRole('button', { name: 'Request another API key' }).click();
    const key = await page.locator('#new-api-key').innerText();
    check(key.startsWith('sb_'), `new API key shown once: ${key.slice(0, 3)}…`);

    const bulkToggle = page.locator('#toggle-messaging_api_for_bulk');
    check(await bulkToggle.getAttribute('aria-checked') === 'false', 'bulk API off at first');
    await bulkToggle.click();
    await page.locator('#toggle-messaging_api_for_bulk[aria-checked="true"]').waitFor();
    check(await page.locator('#toggle-messaging_api_for_bulk').isDisabled(), 'an enabled one-way toggle is disabled');
    check(await state('bulk-api') === 'Done', 'bulk API step done');
    await page.locator('#toggle-connected_app_for_incoming').click();
    await page.locator('#toggle-connected_app_for_incoming[aria-checked="true"]').waitFor();
    check(await page.locator('#toggle-connected_app_for_incoming').isDisabled(), 'connected app toggle disabled once on');
    await shot(page, 'settings-toggles-enabled');
  });

  await step('add a simulated gateway', async () => {
    const details = page.locator('#add-gateway');
    if (!(await details.getAttribute('open') !== null)) await details.locator('summary').click();
    await page.getByLabel('Provider', { exact: true }).selectOption('sim');
    await page.getByLabel('Name', { exact: true }).fill('Second line');
    await page.getByLabel('Number', { exact: true }).fill('+1 202 555 0199');
    await page.getByRole('button', { name: 'Add gateway' }).click();
    await page.getByRole('status').filter({ hasText: 'Gateway Second line added' }).waitFor();
    await page.locator('#gateway-list').getByText('Second line').waitFor();
    await shot(page, 'gateway-added');
  });

  await step('conversation: send, and the status becomes Delivered live', async () => {
    await page.goto(base + '/ui/');
    await page.getByRole('link', { name: 'Ana Lopez' }).click();
    await page.waitForURL(/\/ui\/conversation/);
    await page.getByRole('heading', { name: 'Ana Lopez' }).waitFor();
    check(await page.locator('#gateway option:checked').innerText() === `Main (${seed.gateway.number})`, 'the first gateway is picked');
    await page.getByLabel('Message').fill('Hello Ana, your advising appointment is Tuesday at 10. 🙂');
    // The counter follows the typing: the emoji needs UCS-2.
    await page.locator('#segcount').filter({ hasText: '57 UTF-16 units · 1 segment (UCS-2)' }).waitFor();
    await page.getByLabel('Message').fill('Hello Ana, your advising appointment is Tuesday at 10.');
    await page.locator('#segcount').filter({ hasText: '54 characters · 1 segment (GSM-7)' }).waitFor();
    await shot(page, 'conversation-compose');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('#send-notice').waitFor();
    const sent = page.locator('li.msg.outgoing').filter({ hasText: 'advising appointment' });
    await sent.waitFor();
    // No reload: the thread polls and the status moves on by itself.
    await page.locator('li.msg.outgoing[data-status="Delivered"]').filter({ hasText: 'advising appointment' }).waitFor();
    await shot(page, 'conversation-delivered');
  });

  await step('a handset reply appears in the thread', async () => {
    await text(page, ana.phone, seed.gateway.number, 'Thanks, see you then');
    await page.locator('li.msg.incoming').filter({ hasText: 'Thanks, see you then' }).waitFor();
    await shot(page, 'conversation-reply');
  });

  await step('template picker: the preview is rendered for the contact; send it', async () => {
    await page.getByLabel('Template').selectOption({ label: 'Reminder' });
    await page.locator('#tplpreview-body').filter({ hasText: 'Hi Ana, this is Ada Admin from Test College.' }).waitFor();
    await shot(page, 'conversation-template');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('#send-notice').waitFor();
    await page.locator('li.msg.outgoing').filter({ hasText: 'Hi Ana, this is Ada Admin from Test College.' }).waitFor();
  });

  await step('inbox lists the reply; mark read', async () => {
    await page.getByRole('link', { name: 'Inbox' }).click();
    await page.waitForURL(/\/ui\/inbox/);
    const row = page.locator('tbody tr').filter({ hasText: 'Thanks, see you then' });
    await row.waitFor();
    await shot(page, 'inbox');
    await row.getByRole('button', { name: /Mark read/ }).click();
    await page.getByRole('status').filter({ hasText: 'Marked 1 message read' }).waitFor();
    check(await page.locator('tbody tr').filter({ hasText: 'Thanks, see you then' }).count() === 0, 'read message left the inbox');
    await shot(page, 'inbox-marked-read');
  });

  await step('STOP: the warning shows and every field but the gateway picklist is disabled', async () => {
    await text(page, ana.phone, seed.gateway.number, 'STOP');
    await page.goto(conversation(ana));
    await page.locator('#send-warning').filter({ hasText: 'opted out' }).waitFor();
    check(await page.locator('#body').isDisabled(), 'message box disabled');
    check(await page.getByRole('button', { name: 'Send' }).isDisabled(), 'send button disabled');
    check(await page.getByLabel('Gateway').isEnabled(), 'gateway picklist still enabled');
    await page.locator('#subscriptions summary').click();
    const row = page.locator('#subscriptions tr').filter({ hasText: 'Main' });
    await row.getByText('Opt-out keyword: STOP').waitFor();
    check(await row.getByRole('button', { name: /Opt-In/ }).count() === 0, 'no manual opt-in after a keyword opt-out');
    await page.locator('li.msg.incoming').filter({ hasText: 'STOP' }).waitFor();
    await shot(page, 'conversation-opted-out');
    // Another gateway is not affected: picking it enables the fields.
    await page.getByLabel('Gateway').selectOption({ label: 'Second line (+12025550199)' });
    await page.locator('#send-warning').waitFor({ state: 'detached' });
    check(await page.locator('#body').isEnabled(), 'message box enabled on the other gateway');
    await page.locator('#subscriptions summary').click();
    const other = page.locator('#subscriptions tr').filter({ hasText: 'Second line' });
    await other.getByRole('button', { name: /Opt-Out/ }).waitFor();
  });

  await step('Limited Access: no Opt-In/Opt-Out buttons; 403 on inbox and bulk', async () => {
    await signOut(page);
    await signIn(page, 'limited');
    await page.waitForURL(base + '/ui/');
    const nav = page.getByRole('navigation', { name: 'Main' });
    check(await nav.getByRole('link', { name: 'Inbox' }).count() === 0, 'no inbox link');
    check(await nav.getByRole('link', { name: 'Bulk SMS' }).count() === 0, 'no bulk link');
    check(await nav.getByRole('link', { name: 'Chat export' }).count() === 0, 'no chat export link');
    await page.goto(conversation(cy));
    await page.locator('#subscriptions summary').click();
    await page.locator('#subscriptions tbody tr').first().waitFor();
    check(await page.locator('#subscriptions').getByRole('button').count() === 0, 'no subscription buttons for Limited Access');
    await shot(page, 'limited-conversation');
    for (const p of ['/ui/inbox', '/ui/bulk', '/ui/settings', '/ui/dashboard', '/ui/chat/exports', '/ui/chat/settings']) {
      const r = await page.goto(base + p);
      check(r.status() === 403, `${p} as Limited Access: status ${r.status()}, want 403`);
    }
    await page.goto(base + '/ui/inbox');
    await page.getByText('Feature: Inbox').waitFor();
    await shot(page, 'limited-inbox-forbidden');
  });

  await step('keyboard only: reach the message box, type, send', async () => {
    await page.goto(conversation(cy));
    await page.locator('body').focus();
    let id = '';
    for (let i = 0; i < 60 && id !== 'body'; i++) {
      await page.keyboard.press('Tab');
      id = await page.evaluate(() => document.activeElement && document.activeElement.id);
    }
    check(id === 'body', 'Tab reaches the message box');
    await page.keyboard.type('Typed without a mouse.');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.id) === 'send', 'Tab moves from the message box to Send');
    await page.keyboard.press('Enter');
    await page.locator('li.msg.outgoing').filter({ hasText: 'Typed without a mouse.' }).waitFor();
    check(await page.evaluate(() => document.activeElement.id) === 'body', 'focus is back in the message box after sending');
    await shot(page, 'keyboard-sent');
  });

  await step('bulk send: preview lists the global opt-out; progress reaches done', async () => {
    await signOut(page);
    await signIn(page, 'bulk');
    await page.waitForURL(base + '/ui/');
    await page.getByRole('link', { name: 'Bulk SMS' }).click();
    await page.waitForURL(/\/ui\/bulk/);
    // Nobody is ticked until the user says so.
    for (const name of ['Ana Lopez', 'Ben Okafor', 'Cy Tran']) {
      check(!(await page.getByLabel(name).isChecked()), `${name} not ticked at first`);
    }
    await page.getByRole('button', { name: 'Select all' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#contacts input[name=record]:checked').length === 3);
    for (const name of ['Ana Lopez', 'Ben Okafor', 'Cy Tran']) {
      check(await page.getByLabel(name).isChecked(), `${name} ticked by Select all`);
    }
    await page.getByLabel('Message').fill('Open day on Saturday from 10am. Reply STOP to opt out.');
    await page.getByLabel('Gateway').selectOption({ label: `Main (${seed.gateway.number})` });
    await shot(page, 'bulk');
    await page.getByRole('button', { name: 'Preview' }).click();
    const excl = page.locator('#pv-exclusions');
    await excl.waitFor();
    await excl.locator('tr').filter({ hasText: 'Ben Okafor' }).filter({ hasText: 'Global opt-out' }).waitFor();
    await excl.locator('tr').filter({ hasText: 'Ana Lopez' }).filter({ hasText: 'Opted out' }).waitFor();
    check(await page.locator('#pv-send').innerText() === '1', 'one recipient will be sent to');
    await shot(page, 'bulk-preview');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.progress-panel').waitFor();
    await page.locator('.progress-panel[data-finished="true"]').waitFor();
    await page.locator('.progress-panel').getByRole('heading', { name: 'Done' }).waitFor();
    const left = page.locator('.progress-panel details');
    await left.locator('summary').click();
    await left.getByText('Global opt-out').waitFor();
    await shot(page, 'bulk-done');
  });

  await step('bulk send with a template: merge fields filled per recipient', async () => {
    await page.goto(base + '/ui/bulk');
    await page.getByRole('button', { name: 'Select all' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#contacts input[name=record]:checked').length === 3);
    await page.getByLabel('Template').selectOption({ label: 'Reminder' });
    await page.getByLabel('Gateway').selectOption({ label: `Main (${seed.gateway.number})` });
    await page.getByRole('button', { name: 'Preview' }).click();
    // Ana opted out and Ben has the global opt-out: Cy alone gets it.
    await page.locator('#pv-sample').filter({ hasText: 'Hi Cy, this is Bulk User from Test College.' }).waitFor();
    check(await page.locator('#pv-send').innerText() === '1', 'one recipient will be sent to');
    check(await page.locator('#pv-per').innerText() === 'varies by recipient', 'segments vary with a template');
    await shot(page, 'bulk-template-preview');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.progress-panel[data-finished="true"]').waitFor();
    await page.goto(conversation(cy));
    await page.locator('li.msg.outgoing').filter({ hasText: 'Hi Cy, this is Bulk User from Test College.' }).waitFor();
    await shot(page, 'bulk-template-received');
  });

  await step('dashboard renders its charts', async () => {
    await signOut(page);
    await signIn(page, 'admin');
    await page.waitForURL(base + '/ui/');
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.waitForURL(/\/ui\/dashboard/);
    await page.locator('figure.chart svg rect').first().waitFor({ state: 'attached' });
    check(Number(await page.locator('#kpi-outgoing').innerText()) >= 3, 'outgoing messages counted');
    check(await page.locator('#kpi-optouts').innerText() === '1', 'one opt-out counted');
    await shot(page, 'dashboard');
  });

  await step('chat export log: conversations skipped while the export was off', async () => {
    await page.getByRole('link', { name: 'Chat export' }).click();
    await page.waitForURL(/\/ui\/chat\/exports/);
    for (const id of Object.values(seed.chats)) {
      const row = page.locator(`#conv-${id}`);
      check(await row.getAttribute('data-state') === 'Skipped: export off', `conversation ${id} skipped while the export was off`);
      await row.getByText('chat export is not enabled').waitFor();
      await row.getByRole('button', { name: /Re-export/ }).waitFor();
    }
    await shot(page, 'chat-log-skipped');
  });

  await step('chat export settings: the instance URL is checked; key upload, mapping and filter saved', async () => {
    await page.getByRole('navigation', { name: 'Chat export' }).getByRole('link', { name: 'Export settings' }).click();
    await page.waitForURL(/\/ui\/chat\/settings/);
    await page.getByLabel('Export closed conversations to the CRM').check();
    await page.getByLabel('Instance URL').fill('https://login.salesforce.com');
    await page.getByLabel('Client ID').fill('3MVG9switchboard.test');
    await page.getByLabel('Username', { exact: true }).fill('api.user@college.example');
    await page.getByLabel('Private key (PEM file)').setInputFiles(seed.key_file);
    await page.getByLabel('Captured field 1').fill('Student Type');
    await page.getByLabel('CRM field 1').fill('Mongoose_Student_Type__c');
    await page.getByLabel('Export only conversations where').fill("student_type = 'Future Student'");
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').filter({ hasText: 'login.salesforce.com' }).waitFor();
    check(await page.getByLabel('Instance URL').getAttribute('aria-invalid') === 'true', 'the instance URL is marked invalid');
    check(await page.getByLabel('CRM field 1').inputValue() === 'Mongoose_Student_Type__c', 'what was typed is kept');
    await shot(page, 'chat-settings-bad-instance');
    await page.getByLabel('Instance URL').fill('https://college.my.salesforce.com');
    await page.getByLabel('Private key (PEM file)').setInputFiles(seed.key_file);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Chat export settings saved.' }).waitFor();
    await page.locator('#key-state').filter({ hasText: 'A private key is stored' }).waitFor();
    check(await page.getByLabel('Export closed conversations to the CRM').isChecked(), 'export on');
    check(await page.getByLabel('Export only conversations where').inputValue() === "student_type = 'Future Student'", 'filter saved');
    await shot(page, 'chat-settings-saved');
  });

  await step('chat export log: re-export all skipped; exported and filtered out', async () => {
    await page.getByRole('navigation', { name: 'Chat export' }).getByRole('link', { name: 'Export log' }).click();
    await page.waitForURL(/\/ui\/chat\/exports/);
    await page.getByRole('button', { name: /Re-export all skipped/ }).click();
    await page.getByRole('status').filter({ hasText: '2 skipped conversations are being exported again.' }).waitFor();
    // The log is a plain page: reload it until both exports have ended.
    const want = { [seed.chats.future]: 'Exported', [seed.chats.alumni]: 'Skipped: filtered out' };
    const deadline = Date.now() + 30000;
    for (;;) {
      await page.goto(base + '/ui/chat/exports');
      let done = true;
      for (const [id, state] of Object.entries(want)) {
        if (await page.locator(`#conv-${id}`).getAttribute('data-state') !== state) done = false;
      }
      if (done) break;
      check(Date.now() < deadline, 'the re-exports did not end');
      await page.waitForTimeout(250);
    }
    await page.locator(`#conv-${seed.chats.alumni}`).getByText('export filter not met').waitFor();
    check(await page.locator(`#conv-${seed.chats.future}`).getByRole('button', { name: /Re-export/ }).count() === 0, 'no re-export of an exported conversation');
    await shot(page, 'chat-log-reexported');
  });

  await step('phone-sized screen: no page scrolls sideways, no table cell is squeezed', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true });
    phone.setDefaultTimeout(30000);
    const p = await phone.newPage();
    watch(p);
    await p.goto(base + '/ui/login');
    await signIn(p, 'admin');
    await p.waitForURL(base + '/ui/');
    for (const [name, url] of [
      ['home', base + '/ui/'], ['conversation', conversation(cy)], ['inbox', base + '/ui/inbox'], ['bulk', base + '/ui/bulk'],
      ['dashboard', base + '/ui/dashboard'], ['settings', base + '/ui/settings'],
      ['chat-log', base + '/ui/chat/exports'], ['chat-settings', base + '/ui/chat/settings'],
    ]) {
      await p.goto(url);
      await p.locator('main h1').first().waitFor();
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 1, `${name}: no sideways scrolling on a phone (overflow ${overflow}px)`);
      // A cell a few characters wide wraps its text a character a line.
      // (Folded sections are opened: their tables count too.)
      const squeezed = await p.evaluate(() => {
        for (const d of document.querySelectorAll('main details')) d.open = true;
        const shown = (c) => {
          const x = c.cloneNode(true);
          for (const h of x.querySelectorAll('.visually-hidden')) h.remove();
          return x.textContent.trim();
        };
        return [...document.querySelectorAll('main th, main td')]
          .filter((c) => c.getClientRects().length > 0 && shown(c).length > 3 && c.clientWidth > 2 && c.clientWidth < 48)
          .map((c) => `${shown(c).slice(0, 24)} (${c.clientWidth}px)`);
      });
      check(squeezed.length === 0, `${name}: squeezed table cells on a phone: ${squeezed.join(', ')}`);
      await shot(p, `phone-${name}`);
    }
    await phone.close();
  });

  await step('sign out', async () => {
    await signOut(page);
    await page.getByText('You have signed out.').waitFor();
    await shot(page, 'signed-out');
    await page.goto(base + '/ui/settings');
    await page.waitForURL(/\/ui\/login\?next=/);
  });

  check(problems.length === 0, 'browser problems:\n' + problems.join('\n'));
  console.log(`${shots} screenshots in ${artifacts}`);
} catch (err) {
  console.error(err.stack || String(err));
  process.exitCode = 1;
  if (current) {
    console.error('failed on ' + current.url());
    await current.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
