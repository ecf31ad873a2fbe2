// End-to-end: the shell bar's global search (web/shell/bootstrap.js, "Global search"; Luigi's
// `globalSearch` with our own results popover), in Chromium at desktop and phone sizes.
//
// Apps and pages, on the embedded demo: alice (admin) finds Admin Console and the page Incident Review;
// dave (developer) does not: the search names only what the navigation the server sent holds, and a
// search for what he may not open says that nothing matches. Keyboard: arrows move the active option
// (the field keeps the focus: an ARIA combobox), Enter opens it, Escape clears, Escape again closes.
//
// Catalog entities, against the real test Backstage (tests/backstage) through portico's tenant-scoped
// catalog proxy, as the Catalog app asks it: acme's user finds acme's and the shared entities, never
// globex's, and a result opens the Catalog app on the entity; globex's user the other way round. A
// catalog that fails leaves the app results and a quiet line (faked with Playwright's route
// interception: the real Backstage is shared by the other tests of this file).
//
// Screenshots go to target/e2e/search-<what>-{desktop,phone}.png. Needs tests/backstage/node_modules
// (scripts/install-backstage.sh) for the catalog part; without it that part fails, unless
// PORTICO_E2E_ALLOW_SKIP is set, when it is skipped with the reason.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startPortico, startBrowser, frameWithUrl, freePort, assertAccessible, collectErrors, signInAt, startBackstage,
  missingBackstage,
} from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const skipCatalog = missingBackstage && process.env.PORTICO_E2E_ALLOW_SKIP
  ? 'tests/backstage/node_modules is missing (run scripts/install-backstage.sh); skipped because PORTICO_E2E_ALLOW_SKIP is set'
  : false;

let demo; // portico on the embedded demo config
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [demo, browser] = await Promise.all([startPortico(), startBrowser()]);
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

// ---------------------------------------------------------------------------------------------------
// Helpers

/** A signed-in page at `viewport`: opens `url`, picks `user` on the dev sign-in page, waits for the shell. */
async function signedIn(url, user, viewport = DESKTOP) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone });
  const page = await context.newPage();
  // A refused or faked fetch is expected (the failing catalog); script errors and CSP violations are not.
  const errors = collectErrors(page);
  await signInAt(page, url, user);
  return { context, page, errors };
}

/** Opens the search field the way a user does: the search button on a desktop, the overflow menu's
 *  "Search" on a phone. Resolves with the field, focused. */
async function openSearch(page) {
  const field = page.getByTestId('luigi-search-input');
  const button = page.getByTestId('luigi-search-btn-desktop');
  if (await button.isVisible()) {
    assert.equal(await button.getAttribute('aria-expanded'), 'false', 'the search button says the field is closed');
    await button.click();
    await page.waitForFunction(() => document.querySelector('[data-testid="luigi-search-btn-desktop"]').getAttribute('aria-expanded') === 'true', null, { timeout: 2000 });
  } else {
    await page.getByTestId('mobile-menu').click();
    await page.getByTestId('luigi-search-btn-mobile').click({ timeout: 2000 });
  }
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'luigi-search-input', null, { timeout: 2000 });
  return field;
}

/** Types `term` into the focused field and waits (bounded) until the popover shows results or a message
 *  for it and the catalog, if any, has answered. */
async function search(page, term) {
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type(term, { delay: 20 });
  await page.waitForFunction(() => {
    const box = document.querySelector('[data-testid="portico-search"]');
    if (!box || !box.isConnected) return false;
    return !/Searching /.test(box.querySelector('[data-testid="portico-search-status"]')?.textContent || '');
  }, null, { timeout: 10000 });
}

/** What the popover shows: its groups, each [label, [[option label, description, key]]], and the status. */
async function shown(page) {
  return page.evaluate(() => {
    const box = document.querySelector('[data-testid="portico-search"]');
    if (!box || !box.isConnected) return null;
    return {
      groups: [...box.querySelectorAll('[role="group"]')].map((group) => [
        document.getElementById(group.getAttribute('aria-labelledby')).textContent,
        [...group.querySelectorAll('[role="option"]')].map((o) => [
          o.querySelector('.portico-search-option-label').textContent,
          o.querySelector('.portico-search-option-description')?.textContent ?? '',
          o.dataset.key,
        ]),
      ]),
      status: box.querySelector('[data-testid="portico-search-status"]')?.textContent ?? '',
      text: box.textContent,
    };
  });
}

/** The field's combobox state: expanded, and the active option's label. */
async function comboboxState(page) {
  return page.evaluate(() => {
    const field = document.querySelector('[data-testid="luigi-search-input"]');
    const active = field.getAttribute('aria-activedescendant');
    const option = active && document.getElementById(active);
    return {
      expanded: field.getAttribute('aria-expanded'),
      active: option ? option.querySelector('.portico-search-option-label').textContent : null,
      selected: [...document.querySelectorAll('[data-testid="portico-search"] [aria-selected="true"]')].length,
    };
  });
}

async function shot(page, what, kind) {
  await page.screenshot({ path: path.join(SHOTS, `search-${what}-${kind}.png`) });
}

/** Waits (bounded) until the shell's address is `pathname` (and, when given, its `~entity`). */
async function at(page, pathname, entity) {
  await page.waitForFunction(([want, ref]) => location.pathname === want && (ref === undefined || new URLSearchParams(location.search).get('~entity') === ref),
    [pathname, entity], { timeout: 10000 })
    .catch(() => assert.fail(`the shell is at ${page.url()}, wanted ${pathname}${entity ? `?~entity=${entity}` : ''}`));
}

// ---------------------------------------------------------------------------------------------------
// Apps and pages (the embedded demo)

test('alice finds apps and pages; the field is a named combobox; axe with the results open (desktop)', async () => {
  const { context, page, errors } = await signedIn(`${demo.baseUrl}/home`, 'alice');
  const field = await openSearch(page);
  // The field has a name and says what it is, whatever Luigi drew.
  assert.equal(await field.getAttribute('aria-label'), 'Search apps and pages');
  assert.equal(await field.getAttribute('role'), 'combobox');
  assert.equal(await page.getByRole('combobox', { name: 'Search apps and pages' }).count(), 1);
  assert.equal(await field.getAttribute('aria-expanded'), 'false');

  await search(page, 'status');
  const status = await shown(page);
  assert.deepEqual(status.groups, [
    ['Apps', [['Service Status', 'How the services you run are doing, and what went wrong lately.', 'app:service-status']]],
    ['Pages', [
      ['Overview', 'Page of Service Status', 'page:/home/service-status/overview'],
      ['Incident Review', 'Page of Service Status', 'page:/home/service-status/incidents'],
    ]],
  ]);
  assert.equal(await field.getAttribute('aria-expanded'), 'true');
  assert.equal(await field.getAttribute('aria-controls'), 'portico-search-listbox');
  // No catalog in the demo: no catalog group, no catalog line.
  assert.equal(status.status, '');
  await shot(page, 'apps', 'desktop');
  await assertAccessible(page, 'shell with search results');

  // Matching reads label, description, category and owner; a one-letter word only starts words.
  await search(page, 'team-platform');
  assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Apps', ['Admin Console']]]);
  await search(page, 'people');
  assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Apps', ['Team Directory']]]);
  await search(page, 'discover');
  assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Apps', ['Team Directory']]]);
  await search(page, 'i');
  assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Pages', ['Incident Review']]]);
  // The hidden not-found entry is never a result.
  await search(page, 'not found');
  assert.match((await shown(page)).status, /^No app or page matches \u201cnot found\u201d\.$/);

  // Enter opens the first result: the page, in its app's frame.
  await search(page, 'incident');
  assert.deepEqual((await shown(page)).groups, [['Pages', [['Incident Review', 'Page of Service Status', 'page:/home/service-status/incidents']]]]);
  await page.keyboard.press('Enter');
  await at(page, '/home/service-status/incidents');
  await frameWithUrl(page, '/apps/service-status/');
  // Leaving the search: the popover is gone and the field empty.
  assert.equal(await shown(page), null);
  assert.equal(await field.inputValue(), '');
  assert.equal(await field.getAttribute('aria-expanded'), 'false');
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard: arrows move the active option, Enter opens it, Escape clears, Escape again closes', async () => {
  const { context, page, errors } = await signedIn(`${demo.baseUrl}/home`, 'alice');
  const field = await openSearch(page);
  await search(page, 'status');
  assert.deepEqual(await comboboxState(page), { expanded: 'true', active: null, selected: 0 });
  await page.keyboard.press('ArrowDown');
  assert.deepEqual(await comboboxState(page), { expanded: 'true', active: 'Service Status', selected: 1 });
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  assert.deepEqual(await comboboxState(page), { expanded: 'true', active: 'Incident Review', selected: 1 });
  // Round the end, and back.
  await page.keyboard.press('ArrowDown');
  assert.equal((await comboboxState(page)).active, 'Service Status');
  await page.keyboard.press('ArrowUp');
  assert.equal((await comboboxState(page)).active, 'Incident Review');
  await page.keyboard.press('ArrowUp');
  assert.equal((await comboboxState(page)).active, 'Overview');
  // The focus never left the field, and the text is what was typed.
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'luigi-search-input');
  assert.equal(await field.inputValue(), 'status');
  await page.keyboard.press('Enter');
  await at(page, '/home/service-status/overview');

  // Tab leaves the field and closes the results (they are not in the tab order); back, they return.
  await search(page, 'team');
  assert.notEqual(await shown(page), null);
  await page.keyboard.press('Tab');
  await page.waitForFunction(() => !document.querySelector('[data-testid="portico-search"]')?.isConnected, null, { timeout: 2000 });
  assert.equal(await field.getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Shift+Tab');
  await page.waitForFunction(() => document.querySelector('[data-testid="portico-search"]')?.isConnected, null, { timeout: 2000 });
  // An app found by its owner says so.
  const team = await shown(page);
  assert.deepEqual(team.groups[0][1].find((o) => o[0] === 'Service Status').slice(0, 2), ['Service Status', 'Operate \u00b7 owned by team-sre']);

  // Escape clears the field and closes the results; a second one closes the field, back to its button.
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('[data-testid="portico-search"]')?.isConnected, null, { timeout: 2000 });
  assert.equal(await field.inputValue(), '');
  assert.equal(await field.getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Escape');
  await field.waitFor({ state: 'hidden', timeout: 2000 });
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'luigi-search-btn-desktop');
  // The button's state follows the field one animation frame later (the shell's repair runs from a
  // MutationObserver through requestAnimationFrame): wait for it, bounded, rather than read it at once.
  await page.waitForFunction(
    () => document.querySelector('[data-testid="luigi-search-btn-desktop"]')?.getAttribute('aria-expanded') === 'false',
    null, { timeout: 2000 });

  // A click on a result opens it, too.
  await openSearch(page);
  await search(page, 'directory');
  await page.getByTestId('portico-search-option').filter({ hasText: 'Team Directory' }).click();
  await at(page, '/home/team-directory');
  assert.deepEqual(errors, []);
  await context.close();
});

test('dave (developer) finds nothing he may not open: no Admin Console, no Incident Review', async () => {
  for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const { context, page, errors } = await signedIn(`${demo.baseUrl}/home`, 'dave', viewport);
    await openSearch(page);
    await search(page, 'admin');
    const admin = await shown(page);
    assert.deepEqual(admin.groups, []);
    assert.equal(admin.status, 'No app or page matches \u201cadmin\u201d.');
    assert.equal(await page.getByRole('listbox').count(), 0);
    await shot(page, 'empty', kind);
    if (kind === 'desktop') await assertAccessible(page, 'shell with an empty search');
    for (const term of ['incident', 'console', 'review', 'team-platform', 'tenants']) {
      await search(page, term);
      const result = await shown(page);
      assert.deepEqual(result.groups, [], `dave's search for ${term}`);
      assert.ok(!/Admin Console|Incident Review/.test(result.text), result.text);
    }
    // What he may open, he finds.
    await search(page, 'status');
    assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Apps', ['Service Status']], ['Pages', ['Overview']]]);
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test('phone: the overflow menu opens the field, results fit the screen, a tap opens the app', async () => {
  const { context, page, errors } = await signedIn(`${demo.baseUrl}/home`, 'alice', PHONE);
  // The desktop button is not shown; the overflow menu's entry is, and the keyboard reaches it.
  assert.equal(await page.getByTestId('luigi-search-btn-desktop').isVisible(), false);
  await page.getByTestId('mobile-menu').click();
  assert.equal(await page.getByTestId('luigi-search-btn-mobile').getAttribute('tabindex'), '0');
  await page.getByTestId('mobile-menu').click();
  const field = await openSearch(page);
  assert.equal(await field.getAttribute('aria-label'), 'Search apps and pages');
  await search(page, 'directory');
  assert.deepEqual((await shown(page)).groups.map(([g, options]) => [g, options.map((o) => o[0])]), [['Apps', ['Team Directory']]]);
  // The field and the popover lie within the screen.
  const boxes = await page.evaluate(() => [document.querySelector('[data-testid="luigi-search-input"]'), document.querySelector('[data-testid="portico-search"]')]
    .map((el) => { const r = el.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; }));
  for (const [left, right, top] of boxes) {
    assert.ok(left >= 0 && right <= PHONE.width && top >= 0, `off screen: ${JSON.stringify(boxes)}`);
  }
  assert.ok(boxes[1][2] >= boxes[0][3], 'the results are below the field');
  await search(page, 'status');
  await shot(page, 'apps', 'phone');
  await assertAccessible(page, 'shell with search results (phone)');
  await page.getByTestId('portico-search-option').filter({ hasText: 'Incident Review' }).tap();
  await at(page, '/home/service-status/incidents');
  // The field goes away with the results, the shellbar is whole again.
  await field.waitFor({ state: 'hidden', timeout: 2000 });
  assert.deepEqual(errors, []);
  await context.close();
});

// ---------------------------------------------------------------------------------------------------
// Catalog entities (the real test Backstage; two tenants in one portico)

const ACME = { id: 'acme', user: 'ann', group: 'acme-eng', namespaces: ['acme', 'common'], app: { id: 'payments', label: 'Payments Console', owner: 'team-payments' } };
const GLOBEX = { id: 'globex', user: 'gus', group: 'globex-eng', namespaces: ['globex', 'common'], app: { id: 'inventory', label: 'Inventory Console', owner: 'team-warehouse' } };

describe('catalog entities', { skip: skipCatalog }, () => {
  let backstage;
  let catalog; // every entity of the test Backstage, read with its full-access token
  let tenants; // portico with acme and globex
  let port;
  let dir;
  const origin = (tenant) => `http://${tenant.id}.localhost:${port}`;

  const tenantYaml = (tenant) => `
  ${tenant.id}:
    hosts: [${tenant.id}.localhost:${port}]
    branding: { title: ${tenant.id} portal }
    auth:
      dev_sign_in:
        users:
          - { id: ${tenant.user}, name: ${tenant.user}, email: ${tenant.user}@${tenant.id}.example, groups: [${tenant.group}] }
    roles:
      developer: { groups: [${tenant.group}] }
    backstage:
      url: ${backstage.url}
      identity: service
      service_token: \${PORTICO_E2E_SEARCH_BACKSTAGE_TOKEN}
      namespaces: [${tenant.id}]
      shared_namespaces: [common]
    apps:
      - { id: ${tenant.app.id}, label: ${tenant.app.label}, owner: ${tenant.app.owner}, category: Operations, access: { roles: [developer] }, static: "embedded:demo" }
`;

  before(async () => {
    if (missingBackstage) {
      throw new Error('tests/backstage/node_modules is missing: run scripts/install-backstage.sh (or set PORTICO_E2E_ALLOW_SKIP=1 to skip these tests)');
    }
    [backstage, port] = await Promise.all([startBackstage(), freePort()]);
    const answer = await fetch(`${backstage.url}/api/catalog/entities?fields=kind,metadata,spec`, {
      headers: { authorization: `Bearer ${backstage.token}` },
      signal: AbortSignal.timeout(10000),
    });
    assert.equal(answer.status, 200);
    catalog = await answer.json();
    dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-search-'));
    const config = path.join(dir, 'portico.yaml');
    writeFileSync(config, `version: 1\ntenants:${tenantYaml(ACME)}${tenantYaml(GLOBEX)}`);
    process.env.PORTICO_E2E_SEARCH_BACKSTAGE_TOKEN = backstage.token;
    tenants = await startPortico(['--config', config], { listen: `127.0.0.1:${port}` });
  });

  after(async () => {
    await tenants?.stop();
    await backstage?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const refOf = (entity) => `${entity.kind}:${entity.metadata.namespace ?? 'default'}/${entity.metadata.name}`.toLowerCase();

  /** The refs of `tenant` the catalog search finds for `term` (the Catalog app's search fields), sorted
   *  by name as the search asks. */
  function expected(tenant, term) {
    const needle = term.toLowerCase();
    return catalog
      .filter((entity) => tenant.namespaces.includes(entity.metadata.namespace ?? 'default'))
      .filter((entity) => [entity.metadata.name, entity.metadata.title, entity.metadata.description, entity.spec?.type, entity.spec?.profile?.displayName]
        .some((field) => typeof field === 'string' && field.toLowerCase().includes(needle)))
      .map(refOf);
  }

  const catalogKeys = (result) => (result.groups.find(([label]) => label === 'Catalog')?.[1] ?? []).map((o) => o[2]);

  test('acme finds its own and shared entities, never globex\u2019s, and opens one in the Catalog app', async () => {
    for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      const { context, page, errors } = await signedIn(`${origin(ACME)}/home`, ACME.user, viewport);
      const field = await openSearch(page);
      assert.equal(await field.getAttribute('aria-label'), 'Search apps, pages and the catalog');

      // "payments": the app, and the catalog's payments entities of acme.
      await search(page, 'payments');
      const payments = await shown(page);
      assert.deepEqual(payments.groups.map(([label]) => label), ['Apps', 'Catalog']);
      assert.deepEqual(payments.groups[0][1].map((o) => o[0]), ['Payments Console']);
      const want = expected(ACME, 'payments');
      assert.ok(want.includes('component:acme/payments-api') && want.length <= 8, JSON.stringify(want));
      assert.deepEqual(catalogKeys(payments).sort(), want.map((ref) => `entity:${ref}`).sort());
      const api = payments.groups[1][1].find((o) => o[2] === 'entity:component:acme/payments-api');
      assert.deepEqual(api.slice(0, 2), ['payments-api', 'Component (service) · acme · Takes payments']);
      if (kind === 'desktop') {
        await shot(page, 'catalog', kind);
        await assertAccessible(page, 'shell with search results');
      }

      // "inventory" names globex's entities only: acme finds none of them.
      assert.ok(expected(GLOBEX, 'inventory').length > 0);
      await search(page, 'inventory');
      const inventory = await shown(page);
      assert.deepEqual(inventory.groups, []);
      assert.equal(inventory.status, 'No app, page or catalog entity matches \u201cinventory\u201d.');
      // A broad word: at most 8 of the catalog, none of globex, and an entry for all of them if more.
      await search(page, 'api');
      const broad = await shown(page);
      const keys = catalogKeys(broad);
      const all = expected(ACME, 'api');
      assert.ok(keys.length > 0 && keys.length <= 8, JSON.stringify(keys));
      assert.ok(keys.every((key) => key === 'catalog-all' || all.includes(key.replace(/^entity:/, ''))), JSON.stringify(keys));
      assert.ok(!keys.some((key) => key.includes(':globex/')), JSON.stringify(keys));
      assert.equal(keys.includes('catalog-all'), all.length > 8);
      if (kind === 'phone') await shot(page, 'catalog', kind);

      // Open payments-api: the keyboard on a desktop, a tap on a phone.
      await search(page, 'payments-api');
      const only = await shown(page);
      assert.deepEqual(catalogKeys(only), ['entity:component:acme/payments-api']);
      if (kind === 'desktop') {
        await page.keyboard.press('ArrowDown');
        assert.equal((await comboboxState(page)).active, 'payments-api');
        await page.keyboard.press('Enter');
      } else {
        await page.getByTestId('portico-search-option').filter({ hasText: 'Takes payments' }).tap();
      }
      await at(page, '/home/catalog', 'component:acme/payments-api');
      const frame = await frameWithUrl(page, '/apps/catalog/');
      await frame.getByTestId('entity-title').filter({ hasText: 'payments-api' }).waitFor({ timeout: 10000 });
      assert.equal((await frame.getByTestId('entity-description').textContent()).trim(), 'Takes payments');
      await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
      await shot(page, 'entity', kind);
      assert.deepEqual(errors, []);
      await context.close();
    }
  });

  test('globex finds its inventory and the shared entities, never acme\u2019s payments', async () => {
    const { context, page, errors } = await signedIn(`${origin(GLOBEX)}/home`, GLOBEX.user);
    await openSearch(page);
    await search(page, 'payments');
    const payments = await shown(page);
    assert.ok(!/payments-api|payments-rest|Payments Console/.test(payments.text), payments.text);
    assert.deepEqual(catalogKeys(payments), expected(GLOBEX, 'payments').map((ref) => `entity:${ref}`));
    await search(page, 'inventory');
    const inventory = await shown(page);
    assert.deepEqual(inventory.groups[0][1].map((o) => o[0]), ['Inventory Console']);
    assert.deepEqual(catalogKeys(inventory).sort(), expected(GLOBEX, 'inventory').map((ref) => `entity:${ref}`).sort());

    // The shared namespace is searched too.
    await search(page, 'design');
    assert.ok(catalogKeys(await shown(page)).includes('entity:component:common/design-system'));
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('more catalog matches than shown: the last entry opens the Catalog app on the search', async () => {
    const { context, page, errors } = await signedIn(`${origin(ACME)}/home`, ACME.user);
    // No short word matches more than 8 entities of the test catalog: the shell's request (not the
    // Catalog app's, in its frame) gets 8 of acme's entities and a total of 11.
    const eight = catalog.filter((entity) => ACME.namespaces.includes(entity.metadata.namespace ?? 'default')).slice(0, 8);
    assert.equal(eight.length, 8);
    await page.route('**/backstage/api/catalog/entities/by-query?**', (route) => {
      if (route.request().frame() !== page.mainFrame()) return route.continue();
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ items: eight, totalItems: 11, pageInfo: {} }) });
    });
    await openSearch(page);
    await search(page, 'es');
    const many = await shown(page);
    const keys = catalogKeys(many);
    assert.equal(keys.length, 9);
    assert.equal(keys[8], 'catalog-all');
    assert.deepEqual(many.groups.at(-1)[1].at(-1).slice(0, 2), ['All 11 catalog matches', 'Open Catalog with this search']);
    // Up from the top goes round to the last entry.
    await page.keyboard.press('ArrowUp');
    assert.equal((await comboboxState(page)).active, 'All 11 catalog matches');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.pathname === '/home/catalog' && new URLSearchParams(location.search).get('~q') === 'es', null, { timeout: 10000 })
      .catch(() => assert.fail(`the shell is at ${page.url()}`));
    const frame = await frameWithUrl(page, '/apps/catalog/');
    await frame.waitForFunction(() => document.querySelector('[data-testid="catalog-search"]')?.value === 'es', null, { timeout: 10000 });
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a failing catalog leaves the app results and a quiet line, never a broken popover', async () => {
    const { context, page, errors } = await signedIn(`${origin(ACME)}/home`, ACME.user);
    // The real Backstage serves the other tests: this one answers the search's request with a 503.
    let asked = 0;
    await page.route('**/backstage/api/catalog/entities/by-query?**', (route) => {
      asked += 1;
      return route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"backstage_unavailable","message":"down"}' });
    });
    await openSearch(page);
    await search(page, 'payments');
    const down = await shown(page);
    assert.deepEqual(down.groups.map(([label, options]) => [label, options.map((o) => o[0])]), [['Apps', ['Payments Console']]]);
    assert.equal(down.status, 'Catalog search unavailable right now.');
    await shot(page, 'unavailable', 'desktop');
    await assertAccessible(page, 'shell with search results, catalog unavailable');
    await search(page, 'nothing-like-this');
    assert.equal((await shown(page)).status, 'No app or page matches \u201cnothing-like-this\u201d.Catalog search unavailable right now.');
    // Typing fast asks once per pause, not once per key (debounced).
    assert.ok(asked <= 4, `the catalog was asked ${asked} times`);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
