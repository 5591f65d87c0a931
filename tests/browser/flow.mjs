// The browser end-to-end flow of migrate-hub's web UI, run by tests/integration/browser.rs against a hub
// it started (real OIDC provider, real worker, a seeded inventory). Headless system Chromium through
// playwright-core. Every step is a function; the first failure ends the run with a non-zero exit, the step,
// the page URL and a snippet of the page text. Any console error, page error or failed request (a 4xx/5xx
// subresource, or a 4xx/5xx page the step did not expect) fails the run too.
//
// Environment:
//   HUB_URL         the hub, e.g. http://127.0.0.1:41234 (required)
//   OIDC_ISSUER     the test provider's issuer; its /__control/next scripts each login (required)
//   PROJECT_ID, ENVIRONMENT_ID, DB_SET_ID, TARGET_NAME   the seeded inventory (required)
//   SCREENSHOT_DIR  full-page screenshots, NN-name.png (required)
//   HTML_DIR        the raw HTML of each main page, NN-name.html, for the vnu pass (required)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   MIGRATION_TABLE the table the test migration creates (default browser_flow_orders)
//   RESULT_FILE     where to write {migration_id, run_id} as JSON (optional)
//   FLOW_SLOW_MO    milliseconds between browser actions, for watching a headed run (optional)
//   FLOW_HEADED=1   show the browser window (optional)

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`flow: the environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const HUB = env('HUB_URL').replace(/\/$/, '');
const ISSUER = env('OIDC_ISSUER').replace(/\/$/, '');
const PROJECT_ID = env('PROJECT_ID');
const ENVIRONMENT_ID = env('ENVIRONMENT_ID');
const DB_SET_ID = env('DB_SET_ID');
const TARGET_NAME = env('TARGET_NAME');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const HTML_DIR = env('HTML_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TABLE = env('MIGRATION_TABLE', 'browser_flow_orders');
const RESULT_FILE = process.env.RESULT_FILE;

const USERS = {
  alice: { sub: 'browser-alice', email: 'alice@example.com', claims: { name: 'Alice Requester' } },
  bob: { sub: 'browser-bob', email: 'bob@example.com', claims: { name: 'Bob Manager' } },
  admin: { sub: 'browser-admin', email: 'admin@example.com', claims: { name: 'Ada Admin' } },
};

const UP_SQL = `-- orders placed through the shop
CREATE TABLE ${TABLE} (
    id bigint PRIMARY KEY,
    note varchar(100) NOT NULL DEFAULT ''
);
CREATE INDEX ${TABLE}_note ON ${TABLE} (note);`;
const DOWN_SQL = `DROP TABLE ${TABLE};`;
const VERSION_KEY = '20260101_0001';
const LIVE_UPDATE_TIMEOUT_MS = 60_000;

mkdirSync(SCREENSHOT_DIR, { recursive: true });
mkdirSync(HTML_DIR, { recursive: true });
// This run's screenshots replace the last run's (a renamed step leaves no stale picture behind).
for (const name of readdirSync(SCREENSHOT_DIR)) {
  if (/^\d\d-[a-z0-9-]+\.png$/.test(name)) rmSync(join(SCREENSHOT_DIR, name));
}

/** What the flow learned along the way (ids of what it created). */
const state = { migrationId: null, runId: null, runUrl: null, projectId: null, releaseUrl: null };

/** Problems seen by the page listeners; any of them fails the step that is running. */
const problems = [];
/** Main-document URLs (path + query) for which the current step expects a 4xx answer. */
const expectedErrorDocuments = new Set();
/** The last main-frame document response, for saving the page's raw HTML. */
let lastDocument = null;
/** Main-frame navigations so far (the live-update step proves that it needed none). */
let navigations = 0;
let currentStep = '(start)';

class FlowError extends Error {}

function fail(message) {
  throw new FlowError(message);
}

function pathOf(url) {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

function watch(page) {
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const location = message.location();
    // Chromium also reports a page answered with 4xx/5xx as a console error; expected ones are not problems.
    if (/^Failed to load resource/.test(message.text()) && expectedErrorDocuments.has(pathOf(location.url))) {
      return;
    }
    problems.push(`console error on ${page.url()}: ${message.text()} (${location.url}:${location.lineNumber})`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught exception on ${page.url()}: ${error.message}`));
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText ?? 'failed';
    // A navigation that a new one replaced (e.g. a click during a poll) is aborted, not broken.
    if (reason === 'net::ERR_ABORTED' && request.isNavigationRequest()) return;
    problems.push(`request failed: ${request.method()} ${request.url()}: ${reason}`);
  });
  page.on('response', (response) => {
    const request = response.request();
    const isDocument = request.isNavigationRequest() && request.frame() === page.mainFrame();
    if (isDocument) lastDocument = response;
    if (response.status() < 400) return;
    if (isDocument && expectedErrorDocuments.has(pathOf(response.url()))) return;
    problems.push(
      `${response.status()} for ${request.resourceType()} ${request.method()} ${pathOf(response.url())} (on ${page.url()})`,
    );
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });
}

/** Saves a full-page screenshot and the raw HTML of the current page as NN-name.png / NN-name.html. */
async function capture(page, name) {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  let html;
  if (lastDocument && pathOf(lastDocument.url()) === pathOf(page.url())) {
    try {
      html = await lastDocument.text();
    } catch {
      html = undefined;
    }
  }
  // The raw body is what the server sent; the serialized DOM is the fallback (e.g. body no longer kept).
  writeFileSync(join(HTML_DIR, `${name}.html`), html ?? (await page.content()));
  console.log(`  captured ${name} (${pathOf(page.url())})`);
}

async function pageSnippet(page) {
  try {
    const text = await page.locator('body').innerText({ timeout: 2000 });
    return text.replace(/\s+\n/g, '\n').slice(0, 1500);
  } catch {
    return '(no page text)';
  }
}

/** Scripts the provider's next login. */
async function scriptLogin(who) {
  const response = await fetch(`${ISSUER}/__control/next`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(USERS[who]),
  });
  if (!response.ok) fail(`the OIDC provider refused to script the login of ${who}: ${response.status} ${await response.text()}`);
}

async function goto(page, path, { expectStatus = 200 } = {}) {
  if (expectStatus >= 400) expectedErrorDocuments.add(path);
  const response = await page.goto(`${HUB}${path}`);
  if (!response) fail(`GET ${path}: no response`);
  if (response.status() !== expectStatus) fail(`GET ${path}: status ${response.status()}, expected ${expectStatus}`);
  return response;
}

async function expectHeading(page, name) {
  const heading = page.getByRole('heading', { level: 1 });
  await heading.first().waitFor({ timeout: 10_000 });
  const text = (await heading.first().innerText()).trim();
  const ok = name instanceof RegExp ? name.test(text) : text === name;
  if (!ok) fail(`expected the page heading (h1) ${name}, found "${text}"`);
}

function expectPath(page, pattern, what) {
  const path = new URL(page.url()).pathname;
  if (!pattern.test(path)) fail(`expected to be on ${what}, but the browser is on ${path}`);
  return path.match(pattern);
}

/** A form control by its `name`, which must have an accessible label. */
async function control(scope, name) {
  const locator = scope.locator(`[name="${name}"]`);
  const count = await locator.count();
  if (count !== 1) fail(`expected one form control named "${name}", found ${count}`);
  const label = await locator.evaluate(
    (el) => (el.labels && el.labels.length > 0) || el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby'),
  );
  if (!label) fail(`the form control "${name}" has no label`);
  return locator;
}

async function clickButton(scope, name) {
  const button = scope.getByRole('button', { name, exact: true });
  if ((await button.count()) === 0) fail(`no button "${name}"`);
  await button.first().click();
}

/** Runs `action` (a click that submits a form) and waits for the new document to load. */
async function submit(page, action) {
  await Promise.all([page.waitForEvent('load', { timeout: 15_000 }), action()]);
}

/** Expects a 4xx answer to the form around `selector` (e.g. a 422 with the errors), wherever it posts. */
async function expectFormError(page, selector) {
  const action = await page.locator(`form:has(${selector})`).evaluate((form) => form.action);
  expectedErrorDocuments.add(pathOf(action));
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

// ---------------------------------------------------------------------------------------------------------
// Steps

async function signIn(page, who, { screenshot } = {}) {
  await goto(page, '/login');
  await expectHeading(page, 'Sign in');
  if (screenshot) await capture(page, screenshot);
  await scriptLogin(who);
  const link = page.getByRole('link', { name: /^Sign in with / });
  if ((await link.count()) !== 1) fail('the login page has no "Sign in with …" link');
  const href = await link.getAttribute('href');
  if (href !== '/login/oidc') fail(`the sign-in link goes to ${href}, expected /login/oidc`);
  await Promise.all([page.waitForURL(`${HUB}/`, { timeout: 20_000 }), link.click()]);
  await expectHeading(page, 'Dashboard');
  const header = await page.locator('header').innerText();
  const { email, claims } = USERS[who];
  if (![email, claims.name, email.split('@')[0]].some((n) => header.includes(n))) {
    fail(`the page header does not show who is signed in (${email}): "${header}"`);
  }
}

async function signOut(page) {
  const button = page.locator('header').getByRole('button', { name: 'Sign out' });
  if ((await button.count()) !== 1) fail('no "Sign out" button in the page header');
  await Promise.all([page.waitForURL(/\/login/, { timeout: 10_000 }), button.click()]);
  await expectHeading(page, 'Sign in');
}

async function loginAsRequester(page) {
  await signIn(page, 'alice', { screenshot: '01-login' });
  await capture(page, '02-dashboard');
}

async function fillMigrationForm(page, { versionKey }) {
  await (await control(page, 'project_id')).selectOption(PROJECT_ID);
  await (await control(page, 'version_key')).fill(versionKey);
  await (await control(page, 'name')).fill('create browser flow orders');
  await (await control(page, 'up_sql')).fill(UP_SQL);
  await (await control(page, 'down_sql')).fill(DOWN_SQL);
  const mode = await control(page, 'transaction_mode');
  const options = await mode.locator('option').evaluateAll((os) => os.map((o) => o.value));
  if (options.length === 0) fail('the transaction_mode select has no options');
}

async function migrationValidationError(page) {
  await goto(page, '/migrations/new');
  await expectHeading(page, /migration/i);
  await capture(page, '03-migration-new');
  await fillMigrationForm(page, { versionKey: '' });
  // The server's check is under test, not the browser's: skip the `required` constraint.
  await page.locator('form:has([name="version_key"])').evaluate((form) => {
    form.noValidate = true;
  });
  await expectFormError(page, '[name="version_key"]');
  await submit(page, () => clickButton(page, 'Create migration'));
  const error = page.locator('.field-error');
  if ((await error.count()) === 0) fail('after submitting an empty version key there is no .field-error on the page');
  const nextToField = await page.locator('[name="version_key"]').evaluate((input) => {
    const describedBy = (input.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
    if (describedBy.some((id) => document.getElementById(id)?.classList.contains('field-error'))) return true;
    for (let el = input.parentElement, depth = 0; el && depth < 3; el = el.parentElement, depth += 1) {
      if (el.querySelector('.field-error')) return el.querySelectorAll('[name]').length <= 2;
    }
    return false;
  });
  if (!nextToField) fail('the .field-error is not next to the version_key field (same label/container or aria-describedby)');
  const kept = await page.locator('[name="up_sql"]').inputValue();
  if (kept.replace(/\r\n/g, '\n') !== UP_SQL) fail(`the up SQL typed was not kept after the error; the textarea holds:\n${kept}`);
  await capture(page, '04-migration-new-error');
}

async function createMigration(page) {
  await fillMigrationForm(page, { versionKey: VERSION_KEY });
  await Promise.all([
    page.waitForURL(/\/migrations\/(?!new$)[^/?]+$/, { timeout: 10_000 }),
    clickButton(page, 'Create migration'),
  ]);
  const [, id] = expectPath(page, /^\/migrations\/([0-9a-zA-Z-]+)$/, 'the new migration');
  if (id === 'new') fail('still on /migrations/new after a valid submission');
  state.migrationId = id;
  const body = await page.locator('body').innerText();
  for (const expected of [VERSION_KEY, `CREATE TABLE ${TABLE}`, `CREATE INDEX ${TABLE}_note`]) {
    if (!body.includes(expected)) fail(`the migration page does not show "${expected}"`);
  }
  await capture(page, '05-migration');
}

async function requestRun(page) {
  const trigger = page
    .getByRole('link', { name: 'Request a run', exact: true })
    .or(page.getByRole('button', { name: 'Request a run', exact: true }));
  if ((await trigger.count()) === 0) fail('the migration page has no "Request a run" link or button');
  await Promise.all([page.waitForURL(/\/runs\/new/, { timeout: 10_000 }), trigger.first().click()]);
  const url = new URL(page.url());
  if (url.searchParams.get('migration_id') !== state.migrationId) {
    fail(`"Request a run" went to ${pathOf(page.url())}, expected /runs/new?migration_id=${state.migrationId}`);
  }
  await (await control(page, 'environment_id')).selectOption(ENVIRONMENT_ID);
  await (await control(page, 'db_set_id')).selectOption(DB_SET_ID);
  await (await control(page, 'direction')).selectOption('up');
  await control(page, 'failure_policy');
  await (await control(page, 'concurrency_limit')).fill('1');
  await (await control(page, 'comment')).fill('Please roll out the orders table (browser test).');
  await capture(page, '06-run-new');
  await Promise.all([
    page.waitForURL(/\/runs\/(?!new$)[0-9a-zA-Z-]+$/, { timeout: 10_000 }),
    clickButton(page, 'Request run'),
  ]);
  const [, id] = expectPath(page, /^\/runs\/([0-9a-zA-Z-]+)$/, 'the new run');
  state.runId = id;
  state.runUrl = `/runs/${id}`;
}

async function requesterCannotApprove(page) {
  const status = await text(page, '#run-status');
  if (status !== 'awaiting_approval' && !/awaiting approval/i.test(status)) {
    fail(`the new run's #run-status is "${status}", expected awaiting_approval`);
  }
  const approve = page.getByRole('button', { name: 'Approve', exact: true });
  if ((await approve.count()) !== 1) fail('the run page has no single "Approve" button for the requester');
  if (!(await approve.isDisabled())) fail('the "Approve" button is enabled for the requester of the run');
  const reasonIds = ((await approve.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
  if (reasonIds.length === 0) fail('the disabled "Approve" button does not point to its reason (aria-describedby)');
  const reasons = await Promise.all(reasonIds.map((id) => page.locator(`[id="${id}"]`).innerText()));
  if (!reasons.some((r) => /requester/i.test(r))) {
    fail(`the reason given for the disabled "Approve" does not mention the requester: "${reasons.join(' ')}"`);
  }
  if (!(await page.locator(`[id="${reasonIds[0]}"]`).isVisible())) fail('the reason for the disabled "Approve" is not visible');
  await capture(page, '07-run-awaiting-approval');
}

async function managerApprovesAndExecutes(page) {
  await signOut(page);
  await signIn(page, 'bob');
  await goto(page, state.runUrl);
  const approve = page.getByRole('button', { name: 'Approve', exact: true });
  if ((await approve.count()) !== 1 || (await approve.isDisabled())) fail('the manager has no enabled "Approve" button');
  const form = page.locator('form').filter({ has: approve });
  const comment = form.locator('textarea, input[name="comment"]');
  if ((await comment.count()) === 0) fail('the approve form has no comment field');
  await comment.first().fill('Reviewed the SQL: looks good.');
  await submit(page, () => approve.click());
  expectPath(page, new RegExp(`^${state.runUrl}$`), 'the run page after approving');
  const approved = await text(page, '#run-status');
  if (approved !== 'approved') fail(`after approving, #run-status is "${approved}", expected approved`);
  await submit(page, () => clickButton(page, 'Execute'));
  expectPath(page, new RegExp(`^${state.runUrl}$`), 'the run page after executing');
}

async function gridReachesSucceeded(page) {
  const before = navigations;
  const started = Date.now();
  let last = '';
  while (Date.now() - started < LIVE_UPDATE_TIMEOUT_MS) {
    last = await text(page, '#run-status');
    if (last === 'succeeded') break;
    if (['failed', 'cancelled', 'denied'].includes(last)) fail(`the run ended ${last}`);
    await page.waitForTimeout(250);
  }
  if (last !== 'succeeded') fail(`#run-status did not reach succeeded within 60 s (last seen: "${last}")`);
  if (navigations !== before) fail('the page navigated while waiting: the status must update live, without a reload');
  // The rest of the page follows once the run ended, still without a reload: the finished time is shown and
  // the Cancel button is gone.
  const headerDeadline = Date.now() + 10000;
  let finished = '';
  while (Date.now() < headerDeadline) {
    finished = await text(page, '#run-finished');
    if (finished !== '' && finished !== '—' && (await page.getByRole('button', { name: 'Cancel run' }).count()) === 0) break;
    await page.waitForTimeout(250);
  }
  if (finished === '' || finished === '—') fail(`the run page's finished time did not follow the run's end (shows "${finished}")`);
  if ((await page.getByRole('button', { name: 'Cancel run' }).count()) !== 0) fail('the finished run still offers "Cancel run"');
  if (navigations !== before) fail('the page navigated while its header followed the run: it must update in place');
  const rows = page.locator('#items tbody tr[data-status]');
  const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
  if (statuses.length === 0) fail('the grid (#items) has no rows with data-status');
  if (statuses.some((s) => s !== 'succeeded')) fail(`the grid's rows are ${statuses.join(', ')}, expected all succeeded`);
  console.log(`  live update: succeeded after ${((Date.now() - started) / 1000).toFixed(1)} s, ${statuses.length} row(s)`);
  // The grid as the script left it, for vnu too (the raw page is the one loaded before the run finished).
  writeFileSync(join(HTML_DIR, '08-run-live-dom.html'), await page.content());
  // Loaded afresh, the finished run shows the same and polls no more.
  await goto(page, state.runUrl);
  const fresh = await text(page, '#run-status');
  if (fresh !== 'succeeded') fail(`reloaded, the run page shows #run-status "${fresh}"`);
  const still = await page.locator('[data-live="true"]').count();
  if (still > 0) fail('the finished run\'s grid is still marked data-live="true" (it would keep polling)');
  await capture(page, '08-run-succeeded');
}

async function targetLogs(page) {
  const row = page.locator('#items tbody tr').filter({ hasText: TARGET_NAME });
  if ((await row.count()) !== 1) fail(`the grid has no row for the target ${TARGET_NAME}`);
  const logs = row.getByRole('link', { name: /Logs/ });
  if ((await logs.count()) !== 1) fail(`the grid row of ${TARGET_NAME} has no "Logs" link`);
  await submit(page, () => logs.click());
  expectPath(page, new RegExp(`^${state.runUrl}/items/[0-9a-zA-Z-]+$`), "the target's log");
  await expectHeading(page, new RegExp(TARGET_NAME));
  const lines = await page.locator('#log tbody tr').allInnerTexts();
  if (lines.length < 2) fail(`the log lists ${lines.length} line(s), expected the attempt and each statement`);
  if (!lines.some((line) => line.includes(TABLE))) fail(`no log line names a statement run (none mentions "${TABLE}")`);
  await capture(page, '09-logs');
}

/** The project the manager makes through the pages, and the folder of migrations uploaded into it. */
const WAREHOUSE = 'warehouse';
const WAREHOUSE_FILES = {
  '001_items.up.sql': 'CREATE TABLE browser_flow_items (id bigint PRIMARY KEY, sku text NOT NULL);',
  '001_items.down.sql': 'DROP TABLE browser_flow_items;',
  '002_stock.up.sql': 'CREATE TABLE browser_flow_stock (item_id bigint NOT NULL, count integer NOT NULL DEFAULT 0);',
  '002_stock.down.sql': 'DROP TABLE browser_flow_stock;',
};

async function managerCreatesProjectAndUploads(page) {
  await goto(page, '/projects');
  await expectHeading(page, /projects/i);
  await (await control(page, 'name')).fill(WAREHOUSE);
  await (await control(page, 'description')).fill('Stock of the shop (browser test)');
  await submit(page, () => clickButton(page, 'Create project'));
  const link = page.locator('main a').filter({ hasText: WAREHOUSE });
  const href = (await link.evaluateAll((as) => as.map((a) => a.getAttribute('href')))).find((h) => /^\/projects\/[0-9a-zA-Z-]+$/.test(h));
  if (!href) fail(`the projects page does not link to the new project ${WAREHOUSE}`);
  state.projectId = href.split('/').pop();
  await goto(page, href);
  await capture(page, '22-project');
  const importLink = page.getByRole('link', { name: 'Import a directory', exact: true });
  if ((await importLink.count()) !== 1) fail('the project page has no "Import a directory" link');
  await submit(page, () => importLink.click());
  expectPath(page, /^\/projects\/[0-9a-zA-Z-]+\/import$/, 'the import page');
  // A folder as a person picks it: the input is a directory picker, the files keep their paths in it.
  const folder = join(mkdtempSync(join(tmpdir(), 'migrate-hub-flow-')), WAREHOUSE);
  mkdirSync(folder);
  for (const [name, sql] of Object.entries(WAREHOUSE_FILES)) writeFileSync(join(folder, name), sql);
  const input = page.locator('input[name="files"]');
  await page.waitForFunction(() => document.querySelector('input[name="files"]').hasAttribute('webkitdirectory'));
  await input.setInputFiles(folder);
  await submit(page, () => clickButton(page, 'Import'));
  const result = await text(page, '#imported');
  if (!result.includes('2 created')) fail(`the import did not report 2 migrations created: "${result}"`);
  await capture(page, '23-import');
}

async function managerRequestsRelease(page) {
  await goto(page, `/runs/new?project_id=${state.projectId}`);
  await expectHeading(page, /release/i);
  await (await control(page, 'environment_id')).selectOption(ENVIRONMENT_ID);
  await (await control(page, 'db_set_id')).selectOption(DB_SET_ID);
  await (await control(page, 'concurrency_limit')).fill('1');
  await (await control(page, 'comment')).fill('The warehouse tables (browser test).');
  await Promise.all([
    page.waitForURL(/\/runs\/(?!new$)[0-9a-zA-Z-]+$/, { timeout: 10_000 }),
    clickButton(page, 'Request run'),
  ]);
  const [, id] = expectPath(page, /^\/runs\/([0-9a-zA-Z-]+)$/, 'the new release');
  state.releaseUrl = `/runs/${id}`;
  const body = await page.locator('main').innerText();
  for (const key of ['001', '002']) {
    if (!body.includes(key)) fail(`the release's page does not list migration ${key}`);
  }
  const status = await text(page, '#run-status');
  if (status !== 'awaiting_approval' && !/awaiting approval/i.test(status)) fail(`the release is "${status}", expected awaiting_approval`);
  await capture(page, '24-release-awaiting-approval');
}

async function secondPersonApprovesRelease(page) {
  await signOut(page);
  await signIn(page, 'admin');
  await goto(page, state.releaseUrl);
  const approve = page.getByRole('button', { name: 'Approve', exact: true });
  if ((await approve.count()) !== 1 || (await approve.isDisabled())) fail('the second person has no enabled "Approve" button');
  await submit(page, () => approve.click());
  await submit(page, () => clickButton(page, 'Execute'));
  const before = navigations;
  const started = Date.now();
  let last = '';
  while (Date.now() - started < LIVE_UPDATE_TIMEOUT_MS) {
    last = await text(page, '#run-status');
    if (last === 'succeeded') break;
    if (['failed', 'cancelled', 'denied'].includes(last)) fail(`the release ended ${last}`);
    await page.waitForTimeout(250);
  }
  if (last !== 'succeeded') fail(`the release's #run-status did not reach succeeded (last seen: "${last}")`);
  if (navigations !== before) fail('the release page navigated while waiting: the header must turn succeeded in place');
  await capture(page, '25-release-succeeded');
}

async function auditAsAdmin(page) {
  await goto(page, '/');
  await signOut(page);
  await signIn(page, 'admin');
  await goto(page, '/audit');
  await expectHeading(page, /audit/i);
  const table = page.locator('table');
  if ((await table.count()) === 0) fail('the audit page has no table');
  const tableText = (await table.allInnerTexts()).join('\n');
  for (const action of ['run.request', 'run.approve', 'run.execute']) {
    if (!new RegExp(`\\b${action.replace('.', '\\.')}\\b`).test(tableText)) fail(`the audit table does not list ${action}`);
  }
  const chain = page.locator('#chain-status');
  if ((await chain.count()) !== 1) fail('the audit page has no #chain-status');
  const chainText = await chain.innerText();
  if (!/verified|intact|\bok\b/i.test(chainText) || /broken|fail/i.test(chainText)) {
    fail(`#chain-status says "${chainText}", expected the chain verified`);
  }
  await capture(page, '10-audit');
}

async function otherPages(page) {
  const pages = [
    ['/runs', '11-runs', /runs/i],
    ['/migrations', '12-migrations', /migrations/i],
    ['/admin/environments', '13-admin-environments', /environments/i],
    ['/admin/targets', '14-admin-targets', /targets/i],
    ['/admin/db-sets', '15-admin-db-sets', /sets/i],
    ['/admin/users', '16-admin-users', /users/i],
    ['/tokens', '17-tokens', /tokens/i],
  ];
  for (const [path, name, heading] of pages) {
    await goto(page, path);
    await expectHeading(page, heading);
    await capture(page, name);
  }
  // Each inventory list links to its objects' pages.
  const details = [
    ['/admin/environments', 'prod', /^\/admin\/environments\/[0-9a-zA-Z-]+$/, '19-admin-environment'],
    ['/admin/targets', TARGET_NAME, /^\/admin\/targets\/[0-9a-zA-Z-]+$/, '20-admin-target'],
    ['/admin/db-sets', null, /^\/admin\/db-sets\/[0-9a-zA-Z-]+$/, '21-admin-db-set'],
  ];
  for (const [list, name, pattern, shot] of details) {
    await goto(page, list);
    const links = page.locator('main table a[href]').filter({ hasText: name ?? /./ });
    const hrefs = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    const href = hrefs.find((h) => pattern.test(h));
    if (!href) fail(`${list} has no link to ${name ?? 'an object'}'s page (links: ${hrefs.join(', ')})`);
    await submit(page, () => page.locator(`main table a[href="${href}"]`).first().click());
    expectPath(page, pattern, `the page of ${name ?? href}`);
    await expectHeading(page, /\S/);
    await capture(page, shot);
  }
  // The run list links to the run, the migration list to the migration.
  await goto(page, '/runs');
  if ((await page.locator(`a[href="${state.runUrl}"]`).count()) === 0) fail(`/runs does not link to ${state.runUrl}`);
  await goto(page, '/migrations');
  if ((await page.locator(`a[href="/migrations/${state.migrationId}"]`).count()) === 0) {
    fail(`/migrations does not link to /migrations/${state.migrationId}`);
  }
}

async function notFoundPage(page) {
  const response = await goto(page, '/no-such-page', { expectStatus: 404 });
  const type = response.headers()['content-type'] ?? '';
  if (!type.startsWith('text/html')) fail(`the 404 for a browser is ${type}, expected an HTML page`);
  const body = await page.locator('body').innerText();
  if (!/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.test(body)) {
    fail('the 404 page does not show the request id');
  }
  await capture(page, '18-not-found');
}

const STEPS = [
  ['sign in as the requester (alice) through the OIDC provider', loginAsRequester],
  ['a migration with an empty version key is refused next to the field, the SQL kept', migrationValidationError],
  ['create the migration', createMigration],
  ['request a run of it in prod', requestRun],
  ['the requester sees Approve disabled, with the reason', requesterCannotApprove],
  ['sign in as the manager (bob), approve and execute', managerApprovesAndExecutes],
  ['the grid reaches succeeded, live', gridReachesSucceeded],
  ["open the target's logs", targetLogs],
  ['the manager creates a project through its page and imports a folder of migrations by upload', managerCreatesProjectAndUploads],
  ['the manager requests a release of the project', managerRequestsRelease],
  ['a second person (admin) approves and executes it; the header turns succeeded in place', secondPersonApprovesRelease],
  ['sign in as admin (admin): the audit page lists the actions, the chain verified', auditAsAdmin],
  ['the other main pages', otherPages],
  ['a 404 page for browsers', notFoundPage],
];

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.FLOW_HEADED !== '1',
    slowMo: Number(process.env.FLOW_SLOW_MO ?? 0),
    // Root in a container has no user namespaces for the sandbox; /dev/shm is small there too.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  watch(page);
  let number = 0;
  try {
    for (const [name, step] of STEPS) {
      number += 1;
      currentStep = `step ${number}/${STEPS.length}: ${name}`;
      console.log(currentStep);
      problems.length = 0;
      await step(page);
      // Late console errors (e.g. from the polling script) count for the step that caused them.
      await page.waitForTimeout(100);
      if (problems.length > 0) fail(`the page reported problems:\n  - ${problems.join('\n  - ')}`);
      expectedErrorDocuments.clear();
    }
  } catch (error) {
    const snippet = await pageSnippet(page);
    const shot = join(HTML_DIR, 'failure.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    writeFileSync(join(HTML_DIR, 'failure.html'), await page.content().catch(() => ''));
    console.error(`\nFAILED at ${currentStep}`);
    console.error(`  ${error instanceof FlowError ? error.message : error.stack ?? error}`);
    if (problems.length > 0 && !(error instanceof FlowError && error.message.includes('reported problems'))) {
      console.error(`  also seen on the page:\n  - ${problems.join('\n  - ')}`);
    }
    console.error(`  page: ${page.url()}`);
    console.error(`  screenshot: ${shot}`);
    console.error(`  page text:\n${snippet.replace(/^/gm, '    | ')}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
  if (RESULT_FILE) writeFileSync(RESULT_FILE, JSON.stringify({ migration_id: state.migrationId, run_id: state.runId }));
  console.log(`flow: all ${STEPS.length} steps passed`);
}

await main();
