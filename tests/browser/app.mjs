// The web app as a person uses it, in headless Chromium against the real binary:
// sign up → verify from the outbox → sign in → describe a need → onboarding with conditional
// fields (errors next to fields, back/resume) → customise → upload a document (live status) →
// ask a question → a streamed answer citing that document (scripted fake model) → Developer
// Studio (config errors at their paths, run trace) → settings. Screenshots go to docs/screenshots.
//
// Run: cargo build -p echoforge -p fakellm && (cd tests/browser && npm ci) && node tests/browser/app.mjs
// (ECHOFORGE_BIN / ECHOFORGE_FAKELLM_BIN / CHROMIUM override the binaries' paths.)
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, check, done, launch, mailTo, shot, startFake, startServer, watch } from './harness.mjs';

const fake = await startFake();
const server = await startServer({ fakeUrl: fake.url });
const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);
watch(page);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
const url = (p) => `${server.base}${p}`;
const email = 'dana@acme.example';
const password = 'Correct1horse';
let agentId = null;

await check('sign-up shows field errors, keeps what was typed, then asks to check email', async () => {
  await page.goto(url('/signup'));
  await page.fill('input[name=name]', 'Dana Scully');
  await page.fill('input[name=company_name]', 'Acme');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'short');
  await page.click('button[type=submit]');
  const err = page.locator('input[name=password] ~ .field-error, label:has(input[name=password]) + .field-error');
  await err.first().waitFor();
  assert((await err.first().textContent()).length > 5, 'a password error is shown next to the field');
  assert((await page.inputValue('input[name=email]')) === email, 'the email is kept');
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.locator('#signup-done').waitFor({ state: 'visible' });
  await shot(page, 'signup');
});

await check('the emailed link verifies the address, then sign-in lands on My Team', async () => {
  const mail = await mailTo(server.dataDir, email, 'verify-email');
  const link = mail.match(/https?:\/\/\S+\/verify-email\?token=[A-Za-z0-9_\-]+/)[0];
  await page.goto(link);
  await page.getByRole('heading', { name: 'Email verified' }).waitFor();
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL(/\/login/);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'Wrong1password');
  await page.click('button[type=submit]');
  await page.locator('.form-error:not(:empty)').waitFor();
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/team$/);
  await page.getByRole('heading', { name: 'My Team' }).waitFor();
  await shot(page, 'team-empty');
});

await check('describing the need suggests the knowledge assistant and starts its onboarding', async () => {
  await page.getByRole('link', { name: 'Add your first team member' }).click();
  await page.waitForURL(/\/team\/new/);
  await page.fill('input[name=q]', 'answer employee questions from our knowledge base with citations');
  await page.click('button:has-text("Suggest")');
  await page.waitForURL(/q=answer/);
  const first = page.locator('.template-card').first();
  assert((await first.getAttribute('data-template')) === 'knowledge-assistant', 'the knowledge assistant is suggested first');
  await shot(page, 'add-member');
  await first.locator('[data-start-onboarding]').click();
  await page.waitForURL(/\/onboarding\/onb_/);
});

await check('onboarding: field errors, conditional fields, back and resume', async () => {
  // Step 1: nothing filled → errors next to the fields, nothing lost.
  await page.click('button[type=submit]');
  await page.locator('[data-error-for="agent_name"]:not(:empty)').waitFor();
  await page.fill('input[name=agent_name]', 'Ava');
  await page.check('input[name=audience_label][value="our customers"]');
  await shot(page, 'onboarding-basics');
  await page.click('button[type=submit]');
  await page.locator('form[data-step="knowledge"]').waitFor();
  // Step 2: "Reply when the answer is not there" only for strict answers.
  const notFound = page.locator('[data-field="not_found_message"]');
  await page.check('input[name=answer_scope][value=strict]');
  await notFound.waitFor({ state: 'visible' });
  await page.check('input[name=answer_scope][value=kb_first]');
  await notFound.waitFor({ state: 'hidden' });
  await page.check('input[name=answer_scope][value=strict]');
  await notFound.waitFor({ state: 'visible' });
  await page.check('input[name=kb_mode][value=create_new]');
  await page.fill('input[name=kb_name]', 'Acme handbook');
  await shot(page, 'onboarding-knowledge');
  // Back keeps the saved answers.
  await page.click('[data-onboarding-back]');
  await page.locator('form[data-step="basics"]').waitFor();
  assert((await page.inputValue('input[name=agent_name]')) === 'Ava', 'the saved name is shown again');
  await page.click('button[type=submit]');
  await page.locator('form[data-step="knowledge"]').waitFor();
  await page.check('input[name=kb_mode][value=create_new]');
  await page.fill('input[name=kb_name]', 'Acme handbook');
  await page.click('button[type=submit]');
  // Step 3: the webhook appears only when handing over is wanted.
  await page.locator('form[data-step="handoff"]').waitFor();
  const hook = page.locator('[data-field="handoff_webhook"]');
  assert(await hook.isHidden(), 'the webhook starts hidden');
  await page.check('input[name=offer_handoff]');
  await hook.waitFor({ state: 'visible' });
  await page.click('button[type=submit]');
  await page.locator('[data-error-for="handoff_webhook"]:not(:empty), form[data-step="handoff"] .field-error:not(:empty)').first().waitFor();
  await page.uncheck('input[name=offer_handoff]');
  await hook.waitFor({ state: 'hidden' });
  // Resume: leave and come back to the same step.
  const here = page.url();
  await page.goto(url('/team'));
  await page.goto(here);
  await page.locator('form[data-step="handoff"]').waitFor();
  await page.click('button[type=submit]');
  await page.locator('[data-onboarding-complete]').waitFor();
  await page.click('[data-onboarding-complete]');
  await page.waitForURL(/\/team\/agt_[^/]+\?setup=1/);
  agentId = page.url().match(/\/team\/(agt_[^/?]+)/)[1];
});

await check('customise with sliders and checkboxes, then the welcome page shows the key once', async () => {
  await page.fill('input[name=tagline]', 'Answers from the Acme handbook');
  await page.fill('input[name=avatar]', '🦉');
  await page.locator('#p-formality').fill('0.8');
  await shot(page, 'customise');
  await page.click('button:has-text("Save and start chatting")');
  await page.waitForURL(/\/welcome$/);
  await page.locator('[data-new-key-value]').waitFor({ state: 'visible' });
  assert((await page.textContent('[data-new-key-value]')).startsWith('ef_'), 'the agent key is shown');
  await shot(page, 'welcome');
  await page.reload();
  assert(await page.locator('[data-new-key]').isHidden(), 'the key is not shown twice');
  await page.goto(url('/team'));
  await page.locator(`.member-card:has-text("Ava")`).waitFor();
  await shot(page, 'team');
});

await check('upload a document; its status updates live to indexed', async () => {
  await page.goto(url('/knowledge'));
  await page.getByRole('link', { name: 'Acme handbook' }).click();
  const doc = join(tmpdir(), 'refund-policy.md');
  writeFileSync(doc, '# Refund policy\n\nCustomers can return any product within 30 days of delivery for a full refund. Refunds are paid to the original card within 5 business days.\n\n## Exchanges\n\nExchanges are free of charge.\n');
  await page.setInputFiles('[data-upload-input]', doc);
  const row = page.locator('tr[data-doc-id]').first();
  await row.waitFor();
  await row.locator('.badge-indexed').waitFor({ timeout: 30000 });
  // Once everything is indexed the page refreshes its figures.
  await page.locator('[data-kb-stats]:has-text("2 passages")').waitFor();
  await page.fill('#kb-q', 'refund within 30 days');
  await page.click('[data-search] button');
  await page.locator('[data-search-results] li:has-text("30 days of delivery")').waitFor();
  await shot(page, 'knowledge');
});

await check('a question gets a streamed answer that cites the uploaded document', async () => {
  await fake.script([
    { tool_calls: [{ name: 'search_knowledge', arguments: { query: 'refund policy 30 days' } }] },
    { text: 'You can return any product within 30 days for a full refund [1].', chunks: 8, chunk_delay_ms: 60 },
  ]);
  await page.goto(url(`/chat/${agentId}`));
  await page.fill('#message', 'How long do customers have to return a product?');
  await page.keyboard.press('Enter');
  const answer = page.locator('.msg-assistant').last();
  // Streaming: the bubble fills in pieces before the final message.
  await answer.locator('.bubble.streaming').waitFor();
  await answer.locator('.activity .tool').first().waitFor();
  await answer.locator('.citation summary:has-text("Refund policy")').waitFor();
  const text = await answer.locator('.bubble').textContent();
  assert(text.includes('30 days'), `the answer is shown: ${text}`);
  await answer.locator('.citation summary').first().click();
  assert((await answer.locator('.citation blockquote').first().textContent()).includes('30 days'), 'the cited passage is shown');
  await page.waitForURL(/\?c=conv_/);
  await shot(page, 'chat');
  // The fake model saw the passage the answer cites.
  const reqs = await fake.requests();
  assert(JSON.stringify(reqs.at(-1).body).includes('within 30 days of delivery'), 'the model was given the passage');
  // The conversation is in the history and survives a reload.
  await page.reload();
  await page.locator('.history a[aria-current]').waitFor();
  await page.locator('.msg-user:has-text("return a product")').waitFor();
});

await check('a file attached to a message is read and answered about', async () => {
  const file = join(tmpdir(), 'invoice-117.txt');
  writeFileSync(file, 'Invoice 117. Total due: 1,250 EUR by 30 November.\n');
  await fake.script([{ text: 'The total due is 1,250 EUR.' }]);
  await page.setInputFiles('[data-attach]', file);
  await page.locator('[data-attached] li:has-text("invoice-117.txt")').waitFor();
  await page.fill('#message', 'What is the total on this invoice?');
  await page.keyboard.press('Enter');
  await page.locator('.msg-assistant .bubble:has-text("1,250 EUR")').waitFor();
  const reqs = await fake.requests();
  assert(JSON.stringify(reqs.at(-1).body).includes('Total due: 1,250 EUR'), 'the model was given the file');
  await page.reload();
  await page.locator('.bubble.attachment:has-text("invoice-117.txt")').waitFor();
  await shot(page, 'chat-attachment');
});

await check('Developer Studio: config errors at their paths, run traces, API examples', async () => {
  await page.goto(url(`/studio/agents/${agentId}`));
  const raw = await page.inputValue('#raw');
  const edited = JSON.parse(raw);
  edited.personality = { creativity: 7 };
  await page.fill('#raw', JSON.stringify(edited, null, 2));
  await page.click('button:has-text("Validate and save")');
  await page.locator('[data-error-list] li:has-text("/personality")').waitFor();
  await page.fill('#raw', '{ not json');
  await page.click('button:has-text("Validate and save")');
  await page.locator('.form-error:has-text("not valid JSON")').waitFor();
  assert((await page.inputValue('#raw')) === '{ not json', 'what was typed is kept');
  assert((await page.textContent('[data-widget-snippet]')).includes('/widget.js'), 'the widget snippet is shown');
  await shot(page, 'studio-agent');
  await page.goto(url('/studio?tab=runs'));
  await page.locator('table a[href^="/studio/runs/"]').last().click(); // the first run: search, then answer
  await page.locator('.step').first().waitFor();
  assert((await page.locator('.step').count()) >= 2, 'the run has model and tool steps');
  await shot(page, 'studio-run');
  await page.goto(url('/studio?tab=api'));
  assert((await page.textContent('main')).includes('/v1/chat/completions'), 'the endpoint is documented');
  await shot(page, 'studio-api');
});

await check('a side-effecting tool waits for approval in the chat, then runs', async () => {
  await page.goto(url(`/studio/agents/${agentId}`));
  const cfg = JSON.parse(await page.inputValue('#raw'));
  cfg.enabled_capabilities.push('escalation');
  cfg.config.handoff_config = { method: 'email', email: 'help@acme.example' };
  cfg.config.requires_confirmation = ['escalate_to_human'];
  await page.fill('#raw', JSON.stringify(cfg, null, 2));
  const [saved] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/api/v1/agents/${agentId}`) && r.request().method() === 'PATCH'),
    page.waitForEvent('framenavigated'), // the editor reloads with the saved version
    page.click('button:has-text("Validate and save")'),
  ]);
  if (saved.status() !== 200) throw new Error(`the configuration was not saved: ${saved.status()}`);
  await page.waitForLoadState('load');
  await fake.script([
    { tool_calls: [{ name: 'escalate_to_human', arguments: { reason: 'the customer wants a call back' } }] },
    { text: 'I have asked a colleague to call you back.' },
  ]);
  await page.goto(url(`/chat/${agentId}`));
  await page.fill('#message', 'Can a manager call me back tomorrow?');
  await page.keyboard.press('Enter');
  const approve = page.locator('.msg-action button[data-decide="approve"]');
  await approve.waitFor();
  assert((await page.locator('.msg-action').textContent()).includes('escalate_to_human'), 'the pending tool is named');
  await shot(page, 'chat-pending-action');
  await approve.click();
  await page.locator('.msg-assistant .bubble:has-text("colleague to call you back")').waitFor();
  assert((await page.locator('.msg-action').textContent()).includes('Approved'), 'the decision is shown');
});

await check('settings: invite shows field errors then succeeds', async () => {
  await page.goto(url('/settings'));
  await page.fill('form[data-api="/api/v1/workspace/invites"] input[name=email]', 'not-an-email');
  await page.click('form[data-api="/api/v1/workspace/invites"] button[type=submit]');
  await page.locator('form[data-api="/api/v1/workspace/invites"] .field-error:not(:empty)').waitFor();
  await page.fill('form[data-api="/api/v1/workspace/invites"] input[name=email]', 'mulder@acme.example');
  await page.click('form[data-api="/api/v1/workspace/invites"] button[type=submit]');
  await page.locator('li:has-text("mulder@acme.example")').waitFor();
  await shot(page, 'settings');
});

await check('member settings: turning the website bubble on asks for its domains, then saves', async () => {
  await page.goto(url(`/team/${agentId}`));
  const section = page.locator('[data-needs-capability="widget"]');
  assert(await section.isHidden(), 'the bubble settings are hidden while the widget is off');
  await page.check('input[name=enabled_capabilities][value=widget]');
  await section.waitFor({ state: 'visible' });
  await page.click('button:has-text("Save changes")');
  await page.locator('[data-error-for="config.allowed_domains"]:not(:empty)').waitFor();
  await page.fill('textarea[name="config.allowed_domains"]', 'www.acme.example');
  await page.selectOption('select[name="config.theme"]', 'dark');
  await page.click('button:has-text("Save changes")');
  await page.locator('#toast:has-text("Saved")').waitFor();
  await page.reload();
  assert((await page.inputValue('textarea[name="config.allowed_domains"]')) === 'www.acme.example', 'the domain is saved');
  assert((await page.inputValue('select[name="config.theme"]')) === 'dark', 'the theme is saved');
  assert((await page.inputValue('input[name=tagline]')) === 'Answers from the Acme handbook', 'other settings are kept');
  await shot(page, 'member-settings');
});

await check('a second team member on the starter plan is refused with a way to upgrade', async () => {
  await page.goto(url('/team/new'));
  await page.locator('[data-start-onboarding="generic-chat"]').click();
  const link = page.locator('#start-error a[data-upgrade]');
  await link.waitFor();
  assert((await page.textContent('#start-error')).includes('starter plan allows 1 agent'), 'the limit and the plan are named');
  await shot(page, 'upgrade-prompt');
  await link.click();
  await page.waitForURL(/\/settings#plan$/);
  await page.locator('#plan').waitFor();
});

await check('no script errors on any page', async () => {
  assert(pageErrors.length === 0, pageErrors.join('\n'));
});

await browser.close();
server.stop();
fake.stop();
done();
