// End-to-end: the shell's home view as a launchpad (web/shell/home.html, home.js, launchpad.css), in
// Chromium against the embedded demo portal. A person sees a tile per app they may open, grouped by
// category; opens apps with a click (inside the shell) or into a new tab (real links); keeps favourites
// and sees recently used apps first (this browser's localStorage, per tenant and user); filters as they
// type; and is told why when they have no app. A browser that prefers German gets all of it in German.
// Desktop and phone screenshots go to target/e2e/launchpad-*.png; axe-core checks each state a person
// can reach.
//
// Demo users (src/config/default.yaml): alice (Service Status, Admin Console in "Operate", Team
// Directory in "Discover"), dave (Service Status, Team Directory), nora (no groups, no apps).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startPortico, startBrowser, frameWithUrl, assertAccessible, signInAt } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 10000 };

// What config says about alice's apps, in config order.
const ALICE_APPS = [
  { id: 'service-status', label: 'Service Status', category: 'Operate', owner: 'team-sre', description: 'How the services you run are doing, and what went wrong lately.', glyph: '\ue1a9' },
  { id: 'admin-console', label: 'Admin Console', category: 'Operate', owner: 'team-platform', description: 'Tenants, roles and apps of this portal, for the platform team.', glyph: '\ue0a6' },
  { id: 'team-directory', label: 'Team Directory', category: 'Discover', owner: 'team-portal', description: 'Find people, their teams and how to reach them.', glyph: '\ue05d' },
];
const favouritesKey = (user) => `portico.favourites.demo.${user}`;
const recentKey = (user) => `portico.recent.demo.${user}`;

let portico;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  portico = await startPortico();
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
});

/**
 * A fresh browser context (its own cookies and localStorage) with page errors collected. `locale` is
 * the browser's language (Accept-Language and navigator.language); Playwright's default is en-US.
 */
async function newPage(viewport = DESKTOP, { locale } = {}) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone, locale });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return { context, page, errors };
}

/** Signs in on the dev sign-in page the portal sends an anonymous browser to. */
async function signIn(page, user) {
  await signInAt(page, portico.baseUrl + '/', user);
}

/** The home view's frame once it has drawn the user's context (a tile, or the no-apps notice). */
async function homeFrame(page) {
  const home = await frameWithUrl(page, '/shell/home.html');
  await home.getByTestId('home-greeting').filter({ hasText: /^Welcome, / }).waitFor(WAIT);
  await home.locator('[data-testid="home-apps"] li, [data-testid="home-no-apps"]:not([hidden])').first().waitFor(WAIT);
  return home;
}

/** Goes to the shell's home path and waits for the launchpad (the shell's spinner gone). */
async function openHome(page) {
  await page.goto(portico.baseUrl + '/home');
  const home = await homeFrame(page);
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 });
  return home;
}

/** The ids of the tiles a person can see in `section` (a locator), in screen order. */
async function shownTiles(section) {
  if (!(await section.isVisible())) return [];
  return section.locator('li[data-app-id]:visible').evaluateAll((items) => items.map((li) => li.dataset.appId));
}

/** The visible section headings of the launchpad, in order (Favourites, Recently used, categories). */
async function sectionHeadings(home) {
  return home.locator('main section:visible > h2').allTextContents();
}

/** A tile's text as a person reads it, whitespace folded. */
async function tileText(tile) {
  return (await tile.innerText()).replace(/\s+/g, ' ').trim();
}

async function storedIds(page, key) {
  return page.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? 'null'), key);
}

async function signOut(page) {
  await page.getByTestId('luigi-topnav-profile-btn').click();
  await page.getByTestId('logout-btn').click();
  await page.waitForURL(/\/auth\/signed-out$/, WAIT);
}

test('alice: tiles by category with description, owner and icon; a click opens the app in the shell; then it is recently used', async () => {
  const { context, page, errors } = await newPage();
  await signIn(page, 'alice');
  const home = await openHome(page);
  assert.equal(await home.getByTestId('home-greeting').textContent(), 'Welcome, Alice Admin');
  assert.equal(await home.getByTestId('home-tenant').textContent(), 'Portico Demo Portal (tenant demo)');
  assert.equal(await home.getByTestId('home-roles').textContent(), 'developer, platform-admin');

  // Nothing used or starred yet in this browser: only the category groups, in config order.
  assert.deepEqual(await sectionHeadings(home), ['Operate', 'Discover', 'Your access']);
  assert.deepEqual(await shownTiles(home.getByTestId('home-group-operate')), ['service-status', 'admin-console']);
  assert.deepEqual(await shownTiles(home.getByTestId('home-group-discover')), ['team-directory']);

  for (const app of ALICE_APPS) {
    const tile = home.getByTestId('home-apps').getByTestId(`home-tile-${app.id}`);
    // Label, category and owner read as one line, then the description.
    assert.equal(await tileText(tile), `${app.label} · ${app.category} · owned by ${app.owner} ${app.description} Open ${app.label} in a new tab`);
    // The main link is a real link to the app's shell path, in the whole window.
    const link = tile.getByRole('link', { name: app.label, exact: true });
    assert.equal(await link.getAttribute('href'), `/home/${app.id}`);
    assert.equal(await link.getAttribute('target'), '_top');
    // The app's SAP icon, from Luigi's icon font (the initials until the font is there).
    const badge = tile.locator('.lp-icon');
    await tile.locator('.lp-icon.has-glyph').waitFor(WAIT);
    assert.equal(await badge.getAttribute('data-glyph'), app.glyph);
    assert.equal((await badge.evaluate((el) => getComputedStyle(el, '::before').fontFamily)).replace(/"/g, ''), 'portico-sap-icons');
    assert.equal(await home.evaluate((glyph) => document.fonts.check('1em "portico-sap-icons"', glyph), app.glyph), true, 'the icon font is loaded');
    // The star is a toggle button, off.
    const star = tile.getByRole('button', { name: `Favourite ${app.label}` });
    assert.equal(await star.getAttribute('aria-pressed'), 'false');
  }

  // A plain click opens the app inside this shell: the address becomes its path, its frame shows it,
  // and the shell page is not reloaded.
  await page.evaluate(() => { window.__samePage = true; });
  await home.getByTestId('home-link-team-directory').click();
  await page.waitForURL((url) => url.pathname === '/home/team-directory', WAIT);
  const app = await frameWithUrl(page, '/apps/team-directory/');
  await app.getByTestId('app-title').filter({ hasText: 'Team Directory' }).waitFor(WAIT);
  assert.equal(await page.evaluate(() => window.__samePage), true, 'the tile reloaded the shell');
  assert.deepEqual((await storedIds(page, recentKey('alice')))[0], 'team-directory');

  // Back home: Team Directory is the recently used app, above the groups (and still in its group).
  await page.getByTestId('nav-home').click();
  await page.waitForURL((url) => url.pathname === '/home', WAIT);
  let again = await homeFrame(page);
  await again.getByTestId('home-recent').getByTestId('home-tile-team-directory').waitFor(WAIT);
  assert.deepEqual(await sectionHeadings(again), ['Recently used', 'Operate', 'Discover', 'Your access']);
  assert.deepEqual(await shownTiles(again.getByTestId('home-recent')), ['team-directory']);
  assert.deepEqual(await shownTiles(again.getByTestId('home-group-discover')), ['team-directory']);

  // An app opened elsewhere in the shell (the side navigation) is recorded by the shell; the home view
  // reads it fresh when shown again: most recent first.
  await page.getByTestId('nav-service-status').click();
  await frameWithUrl(page, '/apps/service-status/');
  await page.getByTestId('nav-home').click();
  again = await homeFrame(page);
  await again.getByTestId('home-recent').getByTestId('home-tile-service-status').waitFor(WAIT);
  assert.deepEqual(await shownTiles(again.getByTestId('home-recent')), ['service-status', 'team-directory']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('favourites: a star puts the app first, survives a reload, unstarring removes it; they are per user', async () => {
  const { context, page, errors } = await newPage();
  await signIn(page, 'alice');
  let home = await openHome(page);
  assert.equal(await home.getByTestId('home-favourites').isVisible(), false);

  const star = home.getByTestId('home-apps').getByRole('button', { name: 'Favourite Admin Console' });
  await star.click();
  assert.equal(await star.getAttribute('aria-pressed'), 'true');
  await home.getByTestId('home-favourites').getByTestId('home-tile-admin-console').waitFor(WAIT);
  assert.deepEqual(await storedIds(page, favouritesKey('alice')), ['admin-console']);

  // After a reload: Favourites is the first section, its star pressed in both places.
  await page.reload();
  home = await homeFrame(page);
  await home.getByTestId('home-favourites').getByTestId('home-tile-admin-console').waitFor(WAIT);
  assert.deepEqual((await sectionHeadings(home))[0], 'Favourites');
  assert.deepEqual(await shownTiles(home.getByTestId('home-favourites')), ['admin-console']);
  assert.deepEqual(await home.getByRole('button', { name: 'Favourite Admin Console' }).evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-pressed'))), ['true', 'true']);

  // Unstarred from the Favourites section: the section goes, the focus stays on the app's star below.
  await home.getByTestId('home-favourites').getByRole('button', { name: 'Favourite Admin Console' }).click();
  await home.getByTestId('home-favourites').waitFor({ state: 'hidden', ...WAIT });
  assert.deepEqual(await storedIds(page, favouritesKey('alice')), []);
  assert.equal(await home.evaluate(() => document.activeElement.closest('[data-testid="home-apps"]') !== null && document.activeElement.dataset.testid), 'home-star-admin-console');
  assert.equal(await home.getByTestId('home-star-admin-console').getAttribute('aria-pressed'), 'false');

  // alice keeps one favourite; dave signs in with the same browser profile and does not see it.
  await home.getByTestId('home-star-team-directory').click();
  await home.getByTestId('home-favourites').getByTestId('home-tile-team-directory').waitFor(WAIT);
  await signOut(page);
  await signIn(page, 'dave');
  home = await openHome(page);
  assert.equal(await home.getByTestId('home-greeting').textContent(), 'Welcome, Dave Developer');
  assert.equal(await home.getByTestId('home-favourites').isVisible(), false);
  assert.equal(await home.getByTestId('home-star-team-directory').getAttribute('aria-pressed'), 'false');
  assert.deepEqual(await storedIds(page, favouritesKey('alice')), ['team-directory']);
  assert.equal(await storedIds(page, favouritesKey('dave')), null);

  // Preferences never grant anything, and broken ones do no harm: an app dave may not open, a number
  // and unparsable JSON are ignored.
  await page.evaluate(([fav, recent]) => {
    localStorage.setItem(fav, '{not json');
    localStorage.setItem(recent, JSON.stringify(['admin-console', 42, 'team-directory']));
  }, [favouritesKey('dave'), recentKey('dave')]);
  await page.reload();
  home = await homeFrame(page);
  await home.getByTestId('home-recent').getByTestId('home-tile-team-directory').waitFor(WAIT);
  assert.deepEqual(await shownTiles(home.getByTestId('home-recent')), ['team-directory']);
  assert.equal(await home.getByTestId('home-favourites').isVisible(), false);
  assert.equal(await home.locator('[data-app-id="admin-console"]').count(), 0);
  assert.ok(!(await home.locator('body').innerText()).includes('Admin Console'));
  assert.deepEqual(errors, []);
  await context.close();
});

test('the filter narrows the tiles as you type, says when nothing matches, and Escape clears it', async () => {
  const { context, page, errors } = await newPage();
  await signIn(page, 'alice');
  const home = await openHome(page);
  const filter = home.getByRole('searchbox', { name: 'Find an app' });
  const all = () => shownTiles(home.getByTestId('home-apps'));
  assert.deepEqual(await all(), ['service-status', 'admin-console', 'team-directory']);

  // By owner, category, description and label, case-insensitively; each word typed narrows further.
  for (const [typed, expected] of [
    ['TEAM-P', ['admin-console', 'team-directory']],
    ['TEAM-PO', ['team-directory']],
  ]) {
    await filter.fill('');
    await filter.pressSequentially(typed);
    assert.deepEqual(await all(), expected, typed);
  }
  for (const [typed, expected] of [['discover', ['team-directory']], ['went wrong', ['service-status']], ['console', ['admin-console']], ['operate platform', ['admin-console']]]) {
    await filter.fill(typed);
    assert.deepEqual(await all(), expected, typed);
  }
  assert.equal(await home.getByTestId('home-filter-status').textContent(), '1 of 3 apps match.');
  // Groups without a match are hidden, with their headings.
  assert.deepEqual(await sectionHeadings(home), ['Operate', 'Your access']);

  await filter.fill('');
  await filter.pressSequentially('payroll');
  await home.getByTestId('home-no-match').waitFor({ state: 'visible', ...WAIT });
  assert.equal(await home.getByTestId('home-no-match-text').textContent(), 'No app matches \u201cpayroll\u201d.');
  assert.deepEqual(await all(), []);
  await assertAccessible(home, 'launchpad, no match');

  await filter.press('Escape');
  assert.equal(await filter.inputValue(), '');
  assert.equal(await home.getByTestId('home-no-match').isVisible(), false);
  assert.deepEqual(await all(), ['service-status', 'admin-console', 'team-directory']);
  assert.equal(await home.getByTestId('home-filter-status').textContent(), '');
  // The notice's button clears it too.
  await filter.fill('zzz');
  await home.getByTestId('home-clear-filter').click();
  assert.deepEqual(await all(), ['service-status', 'admin-console', 'team-directory']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('tiles are real links: ctrl-click and the new-tab link open the app in a new tab of the shell', async () => {
  const { context, page, errors } = await newPage();
  await signIn(page, 'alice');
  const home = await openHome(page);
  const link = home.getByTestId('home-link-team-directory');
  assert.equal(await link.getAttribute('href'), '/home/team-directory');
  assert.equal(await link.getAttribute('target'), '_top');
  // (Scoped to the groups: once the app is opened, it is in Recently used as well.)
  const newTab = home.getByTestId('home-apps').getByRole('link', { name: 'Open Team Directory in a new tab' });
  assert.equal(await newTab.getAttribute('href'), '/home/team-directory');
  assert.equal(await newTab.getAttribute('target'), '_blank');
  assert.equal(await newTab.getAttribute('rel'), 'noopener');

  /** The new tab `action` opens lands in the shell on the app (the session cookie is shared). */
  async function opensInNewTab(action) {
    const [tab] = await Promise.all([context.waitForEvent('page', WAIT), action()]);
    await tab.waitForURL((url) => url.pathname === '/home/team-directory', WAIT);
    const app = await frameWithUrl(tab, '/apps/team-directory/');
    await app.getByTestId('app-title').filter({ hasText: 'Team Directory' }).waitFor(WAIT);
    await tab.close();
  }
  // Ctrl-click (or cmd-click): the browser's own new tab, from the link's href; this shell stays home.
  await opensInNewTab(() => link.click({ modifiers: ['ControlOrMeta'] }));
  assert.equal(new URL(page.url()).pathname, '/home');
  // The shell of that tab recorded the app as used, and this home view, still open, shows it already.
  await home.getByTestId('home-recent').getByTestId('home-tile-team-directory').waitFor(WAIT);
  await opensInNewTab(() => newTab.click());
  assert.equal(new URL(page.url()).pathname, '/home');
  // What "open link in new tab" does: the href in a new page of the same browser.
  await opensInNewTab(async () => {
    const tab = await context.newPage();
    await tab.goto(portico.baseUrl + '/home/team-directory');
  });
  assert.deepEqual(errors, []);
  await context.close();
});

test('nora has no apps and is told why and whom to ask', async () => {
  const { context, page, errors } = await newPage();
  await signIn(page, 'nora');
  const home = await openHome(page);
  const notice = home.getByTestId('home-no-apps');
  await notice.waitFor({ state: 'visible', ...WAIT });
  const said = (await notice.innerText()).replace(/\s+/g, ' ');
  assert.match(said, /You have no apps yet/);
  assert.match(said, /you are in no group, so you have no role in Portico Demo Portal/);
  assert.match(said, /Ask your team lead or the platform team/);
  assert.equal(await home.getByTestId('home-roles').textContent(), 'none');
  assert.equal(await home.getByTestId('home-groups').textContent(), 'none');
  assert.equal(await home.getByTestId('home-filter').isVisible(), false);
  assert.equal(await home.getByTestId('home-apps').locator('li').count(), 0);
  await assertAccessible(home, 'launchpad without apps');
  assert.deepEqual(errors, []);
  await context.close();
});

// The demo config gives every app a category and a known icon; what config may also say is edited into
// dave's answer of /shell/config.json (the server's own, fetched through): no category, an icon name
// the font does not know, no description or owner.
test('apps without a category come last under "Other apps"; without a known icon they show initials', async () => {
  const { context, page, errors } = await newPage();
  await context.route((url) => url.pathname === '/shell/config.json', async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    const home = config.luigi.navigation.nodes.find((node) => node.pathSegment === 'home');
    for (const app of home.context.apps) {
      if (app.id === 'team-directory') Object.assign(app, { category: null, icon: 'no-such-icon' });
      if (app.id === 'service-status') Object.assign(app, { description: null, owner: null });
    }
    await route.fulfill({ response, json: config });
  });
  await signIn(page, 'dave');
  const home = await openHome(page);
  assert.deepEqual(await sectionHeadings(home), ['Operate', 'Other apps', 'Your access']);
  assert.deepEqual(await shownTiles(home.getByTestId('home-group-other')), ['team-directory']);
  const directory = home.getByTestId('home-tile-team-directory');
  assert.equal(await tileText(directory), 'Team Directory · owned by team-portal Find people, their teams and how to reach them. Open Team Directory in a new tab');
  const status = home.getByTestId('home-tile-service-status');
  assert.equal(await tileText(status), 'Service Status · Operate Open Service Status in a new tab');
  // Once the icons are drawn (Service Status has its own), the unknown one keeps its initials.
  await status.locator('.lp-icon.has-glyph').waitFor(WAIT);
  const badge = directory.locator('.lp-icon');
  assert.equal(await badge.getAttribute('data-initials'), 'TD');
  assert.equal(await badge.evaluate((el) => getComputedStyle(el, '::before').content), '"TD"');
  assert.equal(await badge.evaluate((el) => el.classList.contains('has-glyph')), false);
  await assertAccessible(home, 'launchpad with other apps');
  assert.deepEqual(errors, []);
  await context.close();
});

for (const [name, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`${name} (${viewport.width}x${viewport.height}): fits without sideways scroll, passes axe, works by keyboard`, async () => {
    const { context, page, errors } = await newPage(viewport);
    await signIn(page, 'alice');
    // One favourite and two recently used apps, as after some use.
    await page.evaluate(([fav, recent]) => {
      localStorage.setItem(fav, JSON.stringify(['team-directory']));
      localStorage.setItem(recent, JSON.stringify(['service-status', 'admin-console']));
    }, [favouritesKey('alice'), recentKey('alice')]);
    const home = await openHome(page);
    await home.getByTestId('home-favourites').getByTestId('home-tile-team-directory').waitFor(WAIT);
    assert.deepEqual(await sectionHeadings(home), ['Favourites', 'Recently used', 'Operate', 'Discover', 'Your access']);
    assert.equal(await home.locator('.lp-icon[data-icon]:not(.has-glyph)').count(), 0, 'all icons are drawn');
    await home.locator('.lp-icon.has-glyph').first().waitFor(WAIT);
    await home.evaluate(() => document.fonts.ready);

    const { scroll, client } = await home.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `the launchpad scrolls sideways: ${scroll} > ${client}`);
    // A phone gets one column of full-width tiles, a desktop several side by side.
    const boxes = await home.getByTestId('home-group-operate').locator('li').evaluateAll((items) => items.map((li) => li.getBoundingClientRect()).map((r) => ({ x: Math.round(r.x), right: Math.round(r.right) })));
    if (viewport === PHONE) {
      assert.equal(boxes[0].x, boxes[1].x);
      assert.ok(boxes[0].right <= client, JSON.stringify({ boxes, client }));
    } else {
      assert.ok(boxes[1].x > boxes[0].right, JSON.stringify(boxes));
    }
    await page.screenshot({ path: path.join(SHOTS, `launchpad-${name}.png`) });
    await assertAccessible(home, `launchpad (${name})`);

    // Keyboard: from the top of the view, Tab reaches the filter, then each tile's link, its new-tab
    // link and its star; the tile shows where the focus is.
    await home.getByTestId('home-greeting').click();
    const order = [];
    for (let i = 0; i < 5; i += 1) {
      await page.keyboard.press('Tab');
      order.push(await home.evaluate(() => document.activeElement.dataset.testid));
    }
    assert.deepEqual(order, ['home-filter', 'home-link-team-directory', 'home-newtab-team-directory', 'home-star-team-directory', 'home-link-service-status']);
    const outline = await home.evaluate(() => getComputedStyle(document.activeElement.closest('li')).outlineStyle);
    assert.equal(outline, 'solid', 'the focused tile has a visible outline');
    // Enter on a tile's link opens the app in the shell.
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.pathname === '/home/service-status', WAIT);
    await frameWithUrl(page, '/apps/service-status/');
    assert.deepEqual(errors, []);
    await context.close();
  });
}

// ---------------------------------------------------------------------------------------------------
// In German. The shell hands the language portico chose from the browser (Accept-Language: de-DE) to
// the view through Luigi Client; every text of the launchpad is then German. What config says (app
// labels, categories, descriptions, the tenant's title) is the server's to translate: it is read from
// the page here, not spelled out.

/** The home view's frame once it has drawn the user's context in German. */
async function homeFrameGerman(page) {
  const home = await frameWithUrl(page, '/shell/home.html');
  await home.getByTestId('home-greeting').filter({ hasText: /^Willkommen, / }).waitFor(WAIT);
  await home.locator('[data-testid="home-apps"] li, [data-testid="home-no-apps"]:not([hidden])').first().waitFor(WAIT);
  return home;
}

/**
 * Notes, in every frame of `context`, whether the home view ever showed English (its texts are loaded
 * before it is shown, so a German browser never sees them flip).
 */
async function watchForEnglish(context) {
  await context.addInitScript(() => {
    if (location.pathname !== '/shell/home.html') return;
    window.__englishSeen = [];
    const check = () => {
      const main = document.getElementById('launchpad');
      if (!main || main.hidden) return;
      const said = main.innerText.match(/Welcome|Find an app|Favourites|Recently used|Your access|owned by|in a new tab/);
      if (said) window.__englishSeen.push(said[0]);
    };
    document.addEventListener('DOMContentLoaded', () => {
      check();
      new MutationObserver(check).observe(document.documentElement, { subtree: true, childList: true, characterData: true, attributes: true });
    });
  });
}

/** Signs alice in with a German browser, with one favourite and one recently used app. */
async function germanAlice(viewport) {
  const opened = await newPage(viewport, { locale: 'de-DE' });
  await watchForEnglish(opened.context);
  await signIn(opened.page, 'alice'); // the dev sign-in page: clicked by test id, whatever its language
  await opened.page.evaluate(([fav, recent]) => {
    localStorage.setItem(fav, JSON.stringify(['team-directory']));
    localStorage.setItem(recent, JSON.stringify(['service-status']));
  }, [favouritesKey('alice'), recentKey('alice')]);
  await opened.page.goto(portico.baseUrl + '/home');
  const home = await homeFrameGerman(opened.page);
  await opened.page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 });
  await home.getByTestId('home-favourites').getByTestId('home-tile-team-directory').waitFor(WAIT);
  return { ...opened, home };
}

test('a German browser gets the launchpad in German: headings, tiles, favourites, the filter and its messages', async () => {
  const { context, page, errors, home } = await germanAlice(DESKTOP);
  assert.equal(await home.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await home.evaluate(() => document.title), 'Startseite');
  assert.equal(await home.getByTestId('home-greeting').textContent(), 'Willkommen, Alice Admin');
  assert.match(await home.getByTestId('home-tenant').textContent(), / \(Mandant demo\)$/);

  // Favourites, Recently used, one section per category (titles from config), then the user's access.
  const headings = await sectionHeadings(home);
  assert.equal(headings.length, 5, JSON.stringify(headings));
  assert.deepEqual([headings[0], headings[1], headings[4]], ['Favoriten', 'Zuletzt verwendet', 'Ihr Zugriff']);
  const groups = home.getByTestId('home-apps').locator('section');
  assert.equal(await groups.count(), 2);
  for (const heading of await groups.locator('h2').allTextContents()) assert.ok(heading.trim(), 'a category heading has a title');
  assert.deepEqual(await shownTiles(home.getByTestId('home-apps')), ['service-status', 'admin-console', 'team-directory']);

  // A tile: "betreut von", a new-tab link named with the app, a star that says what it does.
  const directory = home.getByTestId('home-apps').getByTestId('home-tile-team-directory');
  const label = await directory.getByTestId('home-link-team-directory').textContent();
  assert.match(await tileText(directory), / · betreut von team-portal /);
  // (On screen the link's text starts with a capital: "In neuem Tab öffnen"; the name is matched as a
  // screen reader says it, whatever the case.)
  const newTab = directory.getByRole('link', { name: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in neuem Tab öffnen$`, 'i') });
  assert.equal(await newTab.getAttribute('target'), '_blank');
  assert.equal((await newTab.evaluate((a) => Array.from(a.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(''))), 'In neuem Tab öffnen');
  const star = directory.getByRole('button', { name: `${label} als Favorit`, exact: true });
  assert.equal(await star.getAttribute('aria-pressed'), 'true');
  assert.equal(await star.getAttribute('title'), 'Aus Favoriten entfernen');
  const statusLabel = await home.getByTestId('home-link-service-status').first().textContent();
  const statusStar = home.getByTestId('home-apps').getByRole('button', { name: `${statusLabel} als Favorit`, exact: true });
  assert.equal(await statusStar.getAttribute('title'), 'Zu Favoriten hinzufügen');
  await statusStar.click();
  await home.getByTestId('home-favourites').getByTestId('home-tile-service-status').waitFor(WAIT);
  assert.equal(await statusStar.getAttribute('title'), 'Aus Favoriten entfernen');
  assert.equal(await home.locator('.lp-access p').first().innerText(), 'Rollen: developer, platform-admin');
  assert.match(await home.locator('.lp-access p').nth(1).innerText(), /^Gruppen aus Ihrem Identity Provider: /);
  await page.screenshot({ path: path.join(SHOTS, 'launchpad-de-desktop.png') });
  await assertAccessible(home, 'launchpad in German');

  // The filter: its label and placeholder, the count with the right plural, no match in German quotes.
  const filter = home.getByRole('searchbox', { name: 'App suchen' });
  assert.equal(await filter.getAttribute('placeholder'), 'Name, Kategorie oder Betreuer');
  await filter.fill('team-po');
  assert.deepEqual(await shownTiles(home.getByTestId('home-apps')), ['team-directory']);
  assert.equal(await home.getByTestId('home-filter-status').textContent(), '1 von 3 Apps gefunden.');
  await filter.fill('');
  await filter.pressSequentially('Gehaltsabrechnung');
  await home.getByTestId('home-no-match').waitFor({ state: 'visible', ...WAIT });
  assert.equal(await home.getByTestId('home-no-match-text').textContent(), 'Keine App passt zu \u201eGehaltsabrechnung\u201c.');
  assert.equal(await home.getByTestId('home-filter-status').textContent(), 'Keine App gefunden.');
  assert.equal(await home.getByTestId('home-clear-filter').textContent(), 'Filter zurücksetzen');
  assert.match((await home.getByTestId('home-no-match').innerText()).replace(/\s+/g, ' '), /Der Filter durchsucht Name, Beschreibung, Kategorie und Betreuer jeder App\./);
  await assertAccessible(home, 'launchpad in German, no match');
  await home.getByTestId('home-clear-filter').click();
  assert.deepEqual(await shownTiles(home.getByTestId('home-apps')), ['service-status', 'admin-console', 'team-directory']);

  assert.deepEqual(await home.evaluate(() => window.__englishSeen), [], 'the view showed English');
  assert.deepEqual(errors, []);
  await context.close();
});

test('German on a phone (390x844): the longer texts wrap inside the view, nothing is cut off or scrolls sideways', async () => {
  const { context, page, errors, home } = await germanAlice(PHONE);
  await home.locator('.lp-icon.has-glyph').first().waitFor(WAIT);
  await home.evaluate(() => document.fonts.ready);
  const { scroll, client } = await home.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `the launchpad scrolls sideways: ${scroll} > ${client}`);
  // Every visible element of the view lies within its width, and no text box is wider than its element.
  const outside = () => home.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return Array.from(document.querySelectorAll('main *'))
      .filter((el) => el.getClientRects().length && !el.closest('.visually-hidden'))
      .filter((el) => {
        const box = el.getBoundingClientRect();
        return box.left < -0.5 || box.right > width + 0.5 || el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible';
      })
      .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${JSON.stringify(el.textContent.slice(0, 40))}`);
  });
  assert.deepEqual(await outside(), []);
  await page.screenshot({ path: path.join(SHOTS, 'launchpad-de-phone.png') });
  await assertAccessible(home, 'launchpad in German (phone)');
  // The no-match notice: its longer German hint and button wrap too.
  await home.getByTestId('home-filter').fill('Gehaltsabrechnung');
  await home.getByTestId('home-no-match').waitFor({ state: 'visible', ...WAIT });
  assert.deepEqual(await outside(), []);
  assert.deepEqual(await home.evaluate(() => window.__englishSeen), [], 'the view showed English');
  assert.deepEqual(errors, []);
  await context.close();
});

test('nora, with a German browser, is told in German that she has no apps and whom to ask', async () => {
  const { context, page, errors } = await newPage(DESKTOP, { locale: 'de-DE' });
  await signIn(page, 'nora');
  await page.goto(portico.baseUrl + '/home');
  const home = await homeFrameGerman(page);
  const said = (await home.getByTestId('home-no-apps').innerText()).replace(/\s+/g, ' ');
  assert.match(said, /Sie haben noch keine Apps/);
  assert.match(said, /Sie sind in keiner Gruppe und haben daher keine Rolle in /);
  assert.match(said, /Bitten Sie Ihre Teamleitung oder das Plattform-Team/);
  assert.equal(await home.getByTestId('home-roles').textContent(), 'keine');
  assert.equal(await home.getByTestId('home-groups').textContent(), 'keine');
  await assertAccessible(home, 'launchpad without apps, in German');
  assert.deepEqual(errors, []);
  await context.close();
});
