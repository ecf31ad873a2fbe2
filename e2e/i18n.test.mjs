// End-to-end: the shell speaks the browser's language (web/shell/bootstrap.js, web/shell/i18n.js and
// the `shell` texts of web/shell/i18n/{en,de}.json), and the global search has a keyboard shortcut.
//
// A German browser (Accept-Language from Playwright's `locale`) gets `<html lang="de">`, Luigi's locale
// `de` (which Luigi Client hands to every view and app), and the shell's own texts in German: the
// search field's name, placeholder and shortcut hint, its groups, descriptions, "nothing matches" and
// the screen reader's result count, the breadcrumbs' name, the phone's overflow menu and the frame
// watchdog's panel. An English browser gets all of that in English. The navigation's labels come from
// the server and are not checked here beyond "the shell shows what the server sent".
//
// The shortcut: "/" (outside a text field) and Ctrl+K open the search and focus its field, on the shell
// page and in portico's own views (the launchpad's frame), never while typing in a field.
//
// Screenshots: target/e2e/i18n-de-{desktop,phone}.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPortico, startBrowser, frameWithUrl, assertAccessible, collectErrors, signInAt } from './harness.mjs';

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TENANT = 'Portico Demo Portal';

let demo; // portico on the embedded demo config
let watchdog; // portico with an app that never starts Luigi Client (see `before`)
let browser;
let dir;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-i18n-'));
  mkdirSync(path.join(dir, 'plain'));
  writeFileSync(path.join(dir, 'plain', 'index.html'),
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Plain</title></head>' +
    '<body><h1>A page without Luigi Client</h1></body></html>');
  const config = path.join(dir, 'portico.yaml');
  writeFileSync(config, `
default_tenant: wd
tenants:
  wd:
    hosts: [127.0.0.1]
    branding: { title: Watchdog Portal }
    luigi: { frame_timeout: 2500ms }
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@wd.example, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: plain, label: Plain Page, owner: team-plain, access: { roles: [developer] }, luigi_client: true, static: ./plain }
`);
  [demo, watchdog, browser] = await Promise.all([startPortico(), startPortico(['--config', config]), startBrowser()]);
});

after(async () => {
  await browser?.close();
  await Promise.all([demo?.stop(), watchdog?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// Helpers

/** A signed-in page in a browser speaking `locale`: opens `url`, picks `user`, waits for the shell. */
async function signedIn(locale, url, user, viewport = DESKTOP) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ locale, viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await signInAt(page, url, user);
  return { context, page, errors };
}

/** Opens the search field the way a user does (the button, or the phone's overflow menu); the field. */
async function openSearch(page) {
  const field = page.getByTestId('luigi-search-input');
  const button = page.getByTestId('luigi-search-btn-desktop');
  if (await button.isVisible()) {
    await button.click();
  } else {
    await page.getByTestId('mobile-menu').click();
    await page.getByTestId('luigi-search-btn-mobile').click({ timeout: 2000 });
  }
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  return field;
}

/** Waits (bounded) until the element with test id `testid` has the focus (in the shell's document). */
async function focused(page, testid) {
  await page.waitForFunction((want) => document.activeElement?.dataset.testid === want, testid, { timeout: 2000 })
    .catch(async () => assert.fail(`the focus is on ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))}, wanted ${testid}`));
}

/** Types `term` into the focused field; waits (bounded) for the popover for it. */
async function search(page, term) {
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type(term, { delay: 20 });
  await page.waitForFunction(() => {
    const box = document.querySelector('[data-testid="portico-search"]');
    return !!box && box.isConnected && !box.querySelector('[data-testid="portico-search-loading"]');
  }, null, { timeout: 10000 });
}

/** What the popover shows: [group label, [[option label, description]]] and the status line. */
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
        ]),
      ]),
      listbox: box.querySelector('[role="listbox"]')?.getAttribute('aria-label') ?? null,
      status: box.querySelector('[data-testid="portico-search-status"]')?.textContent ?? '',
    };
  });
}

/** Waits (bounded) for the screen reader's summary of the results to be `text`. */
async function announced(page, text) {
  await page.waitForFunction((want) => document.querySelector('[data-testid="portico-search-announcer"]')?.textContent === want, text, { timeout: 3000 })
    .catch(async () => assert.fail(`announced ${JSON.stringify(await page.getByTestId('portico-search-announcer').textContent())}, wanted ${JSON.stringify(text)}`));
}

/** The search field's attributes that name it and its shortcut. */
async function fieldTexts(page) {
  return page.evaluate(() => {
    const field = document.querySelector('[data-testid="luigi-search-input"]');
    const button = document.querySelector('[data-testid="luigi-search-btn-desktop"]');
    return {
      label: field.getAttribute('aria-label'),
      placeholder: field.getAttribute('placeholder'),
      title: field.getAttribute('title'),
      shortcuts: field.getAttribute('aria-keyshortcuts'),
      buttonTitle: button?.getAttribute('title') ?? null,
      buttonShortcuts: button?.getAttribute('aria-keyshortcuts') ?? null,
    };
  });
}

/** The labels of the navigation as the server sent them (translated there, not by the shell): home,
 *  the apps by id and their pages by link. */
function navLabels(page) {
  return page.evaluate(() => {
    const home = Luigi.getConfig().navigation.nodes[0];
    const apps = {};
    const pages = {};
    for (const node of home.children || []) {
      if (typeof node.link === 'string') pages[node.link] = node.label;
      else if (node.context?.app) apps[node.context.app.id] = node.label;
    }
    return { home: home.label, apps, pages };
  });
}

/** The popover's groups with the labels of their options only. */
const labelsIn = (result) => result.groups.map(([group, options]) => [group, options.map((o) => o[0])]);
const OVERVIEW = '/home/service-status/overview';
const INCIDENTS = '/home/service-status/incidents';

/** Whether anything of the page sticks out to the right of the screen (the layout, not a scroller). */
function overflowing(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > width) out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${width})`);
    for (const el of document.querySelectorAll('.fd-shellbar *, .portico-breadcrumbs *, .portico-search *, .portico-frame-panel *')) {
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || style.display === 'none') continue;
      const box = el.getBoundingClientRect();
      if (box.width && (box.right > width + 0.5 || box.left < -0.5)) out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} spans ${Math.round(box.left)}–${Math.round(box.right)}`);
      // A text cut off by its own box (without an ellipsis meant for it).
      if (el.scrollWidth > el.clientWidth + 1 && style.overflowX === 'visible' && el.children.length === 0 && el.clientWidth) {
        out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} overflows its box: ${JSON.stringify(el.textContent.slice(0, 40))}`);
      }
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------
// German

test('a German browser gets the shell in German: language, Luigi\'s locale, search, breadcrumbs, axe', async () => {
  const { context, page, errors } = await signedIn('de-DE', `${demo.baseUrl}/home/service-status/overview`, 'alice');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await page.evaluate(() => Luigi.i18n().getCurrentLocale()), 'de');
  // Luigi Client hands the language on: the app's frame gets it.
  const app = await frameWithUrl(page, '/apps/service-status/overview');
  const nav = await navLabels(page);
  const service = nav.apps['service-status'];
  await page.waitForFunction((want) => [...document.querySelectorAll('iframe')].some((f) => f.title === want), `${nav.pages[OVERVIEW]} – ${service}`, { timeout: 5000 });

  // Breadcrumbs: named in German; the trail is the navigation's labels, as the server sent them.
  const crumbs = page.getByRole('navigation', { name: 'Navigationspfad' });
  await crumbs.waitFor({ state: 'visible', timeout: 5000 });
  assert.deepEqual(await crumbs.locator('a, [aria-current]').allTextContents(), [nav.home, service, nav.pages[OVERVIEW]]);
  assert.equal(await page.getByRole('navigation', { name: 'Breadcrumb' }).count(), 0);

  // The search field: its name, placeholder and shortcut in German.
  const field = await openSearch(page);
  assert.deepEqual(await fieldTexts(page), {
    label: 'Apps und Seiten durchsuchen',
    placeholder: 'Apps und Seiten …',
    title: 'Apps und Seiten durchsuchen (/ oder Strg+K)',
    shortcuts: '/ Control+K',
    buttonTitle: 'Apps und Seiten durchsuchen (/ oder Strg+K)',
    buttonShortcuts: '/ Control+K',
  });
  assert.equal(await page.getByRole('combobox', { name: 'Apps und Seiten durchsuchen' }).count(), 1);

  await search(page, service);
  const status = await shown(page);
  assert.deepEqual(labelsIn(status), [['Apps', [service]], ['Seiten', [nav.pages[OVERVIEW], nav.pages[INCIDENTS]]]]);
  assert.deepEqual(status.groups[1][1].map((o) => o[1]), [`Seite in ${service}`, `Seite in ${service}`]);
  assert.equal(status.listbox, 'Suchergebnisse');
  await announced(page, '3 Ergebnisse');
  // Found by its owner: the reason, in German; one result.
  await search(page, 'team-platform');
  const owner = await shown(page);
  assert.deepEqual(labelsIn(owner), [['Apps', [nav.apps['admin-console']]]]);
  assert.match(owner.groups[0][1][0][1], /betreut von team-platform$/);
  await announced(page, '1 Ergebnis');

  // Nothing matches: said in German, with German quotes.
  await search(page, 'xyzzy');
  const none = await shown(page);
  assert.deepEqual(none.groups, []);
  assert.equal(none.status, 'Keine App oder Seite passt zu \u201exyzzy\u201c.');
  await announced(page, 'Keine App oder Seite passt zu \u201exyzzy\u201c.');
  await assertAccessible(page, 'shell in German');

  // Every app's owner starts with team-: the results say who runs what.
  await search(page, 'team');
  await page.screenshot({ path: path.join(SHOTS, 'i18n-de-desktop.png') });
  assert.equal(await field.inputValue(), 'team');
  assert.deepEqual(await overflowing(page), []);
  assert.ok(await app.evaluate(() => document.readyState), 'the app frame is there');
  assert.deepEqual(errors, []);
  await context.close();
});

test('German on a phone: the overflow menu and the search fit the screen', async () => {
  const { context, page, errors } = await signedIn('de-DE', `${demo.baseUrl}/home/service-status/overview`, 'alice', PHONE);
  await frameWithUrl(page, '/apps/service-status/overview');
  const crumbs = page.getByRole('navigation', { name: 'Navigationspfad' });
  await crumbs.waitFor({ state: 'visible', timeout: 5000 });
  assert.deepEqual(await overflowing(page), []);

  // The overflow menu: its button and its search entry in German.
  const more = page.getByTestId('mobile-menu');
  await page.waitForFunction(() => document.querySelector('[data-testid="mobile-menu"]')?.getAttribute('aria-label') === 'Mehr', null, { timeout: 2000 });
  await more.click();
  const entry = page.getByTestId('luigi-search-btn-mobile');
  await entry.waitFor({ state: 'visible', timeout: 2000 });
  assert.equal((await entry.textContent()).trim(), 'Suchen');
  await page.screenshot({ path: path.join(SHOTS, 'i18n-de-phone-menu.png') });
  await more.click();

  const nav = await navLabels(page);
  const service = nav.apps['service-status'];
  await openSearch(page);
  await search(page, service);
  assert.deepEqual(labelsIn(await shown(page)), [['Apps', [service]], ['Seiten', [nav.pages[OVERVIEW], nav.pages[INCIDENTS]]]]);
  const boxes = await page.evaluate(() => [document.querySelector('[data-testid="luigi-search-input"]'), document.querySelector('[data-testid="portico-search"]')]
    .map((el) => { const r = el.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; }));
  for (const [left, right, top] of boxes) {
    assert.ok(left >= 0 && right <= PHONE.width && top >= 0, `off screen: ${JSON.stringify(boxes)}`);
  }
  // The placeholder fits the field (German words are longer).
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Backspace');
  const placeholder = await page.evaluate(() => {
    const field = document.querySelector('[data-testid="luigi-search-input"]');
    const probe = document.createElement('span');
    const style = getComputedStyle(field);
    probe.style.font = style.font;
    probe.style.whiteSpace = 'pre';
    probe.textContent = field.placeholder;
    document.body.appendChild(probe);
    const width = probe.getBoundingClientRect().width;
    probe.remove();
    return { text: field.placeholder, width, room: field.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) };
  });
  assert.equal(placeholder.text, 'Apps und Seiten …');
  assert.ok(placeholder.width <= placeholder.room, `the placeholder is cut: ${JSON.stringify(placeholder)}`);
  await search(page, 'xyzzy');
  assert.equal((await shown(page)).status, 'Keine App oder Seite passt zu \u201exyzzy\u201c.');
  await search(page, service);
  // Nothing lies over the results (the breadcrumb bar below the shellbar was on top of their first lines).
  const covered = await page.evaluate(() => [...document.querySelectorAll('[data-testid="portico-search"] .portico-search-group-label, [data-testid="portico-search-option"]')]
    .filter((el) => {
      const box = el.getBoundingClientRect();
      const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
      return !top || !top.closest('[data-testid="portico-search"]');
    }).map((el) => el.textContent));
  assert.deepEqual(covered, [], 'results covered by something else');
  await page.screenshot({ path: path.join(SHOTS, 'i18n-de-phone.png') });
  assert.deepEqual(await overflowing(page), []);
  await assertAccessible(page, 'shell in German (phone)');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a German browser gets the frame watchdog\'s panel in German', async () => {
  const { context, page, errors } = await signedIn('de-DE', `${watchdog.baseUrl}/home/plain`, 'dev');
  await frameWithUrl(page, '/apps/plain/');
  const panel = page.getByTestId('portico-frame-panel');
  await panel.waitFor({ state: 'visible', timeout: 10000 });
  const text = await panel.innerText();
  assert.match(text, /^Plain Page startet nicht$/m);
  assert.match(await page.getByTestId('portico-frame-reason').innerText(),
    /^Die Seite wurde geladen, hat Luigi Client aber nicht gestartet\. .*luigi_client: false setzen\)\.$/);
  assert.equal(await page.getByTestId('portico-frame-reason').locator('code').textContent(), 'luigi_client: false');
  assert.equal(await page.getByTestId('portico-frame-owner').innerText(), 'Zuständig: team-plain. Wenn das wieder passiert, geben Sie dort Bescheid.');
  // The time as German writes it: 2,5 s.
  assert.match(text, /2,5 s lang auf \/home\/plain gewartet\./);
  assert.equal(await panel.getByRole('button', { name: 'Erneut versuchen' }).count(), 1);
  await page.screenshot({ path: path.join(SHOTS, 'i18n-de-watchdog-desktop.png') });
  await assertAccessible(page, 'the watchdog panel in German');
  assert.deepEqual(errors, []);
  await context.close();
});

// ---------------------------------------------------------------------------------------------------
// English

test('an English browser gets the shell in English', async () => {
  const { context, page, errors } = await signedIn('en-US', `${demo.baseUrl}/home/service-status/overview`, 'alice');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.equal(await page.evaluate(() => Luigi.i18n().getCurrentLocale()), 'en');
  await frameWithUrl(page, '/apps/service-status/overview');
  const nav = await navLabels(page);
  const service = nav.apps['service-status'];
  const crumbs = page.getByRole('navigation', { name: 'Breadcrumb' });
  await crumbs.waitFor({ state: 'visible', timeout: 5000 });
  assert.deepEqual(await crumbs.locator('a, [aria-current]').allTextContents(), ['Home', service, nav.pages[OVERVIEW]]);

  await openSearch(page);
  assert.deepEqual(await fieldTexts(page), {
    label: 'Search apps and pages',
    placeholder: 'Apps and pages\u2026',
    title: 'Search apps and pages (/ or Ctrl+K)',
    shortcuts: '/ Control+K',
    buttonTitle: 'Search apps and pages (/ or Ctrl+K)',
    buttonShortcuts: '/ Control+K',
  });
  await search(page, service);
  const status = await shown(page);
  assert.deepEqual(labelsIn(status), [['Apps', [service]], ['Pages', [nav.pages[OVERVIEW], nav.pages[INCIDENTS]]]]);
  assert.deepEqual(status.groups[1][1].map((o) => o[1]), [`Page of ${service}`, `Page of ${service}`]);
  assert.equal(status.listbox, 'Search results');
  await announced(page, '3 results');
  await search(page, 'team-platform');
  assert.match((await shown(page)).groups[0][1][0][1], /owned by team-platform$/);
  await announced(page, '1 result');
  await search(page, 'xyzzy');
  assert.equal((await shown(page)).status, 'No app or page matches \u201cxyzzy\u201d.');
  assert.deepEqual(errors, []);
  await context.close();

  // The watchdog, in English (the same panel as e2e/shell.test.mjs checks in detail).
  const wd = await signedIn('en-US', `${watchdog.baseUrl}/home/plain`, 'dev');
  const panel = wd.page.getByTestId('portico-frame-panel');
  await panel.waitFor({ state: 'visible', timeout: 10000 });
  const text = await panel.innerText();
  assert.match(text, /^Plain Page did not start$/m);
  assert.match(text, /Owner: team-plain\. If this keeps happening, tell them\./);
  assert.match(text, /Waited 2\.5 s for \/home\/plain\./);
  assert.equal(await panel.getByRole('button', { name: 'Try again' }).count(), 1);
  assert.deepEqual(wd.errors, []);
  await wd.context.close();
});

// ---------------------------------------------------------------------------------------------------
// The keyboard shortcut

test('"/" and Ctrl+K open the search from the shell and from the launchpad, never while typing', async () => {
  const { context, page, errors } = await signedIn('en-US', `${demo.baseUrl}/home`, 'alice');
  const launchpad = await frameWithUrl(page, '/shell/home.html');
  await launchpad.getByTestId('home-greeting').waitFor({ timeout: 5000 });
  const nav = await navLabels(page);
  const directory = nav.apps['team-directory'];
  const incidents = nav.pages[INCIDENTS];
  const field = page.getByTestId('luigi-search-input');
  assert.equal(await field.isVisible(), false);

  // "/" on the shell page (the focus on its body): the field opens with the focus, and the "/" is not in it.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press('/');
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  assert.equal(await field.inputValue(), '');
  assert.equal(await page.getByTestId('luigi-search-btn-desktop').getAttribute('aria-expanded'), 'true');
  await search(page, directory);
  assert.deepEqual(labelsIn(await shown(page)), [['Apps', [directory]]]);
  // Escape clears and closes the results; Escape again puts the field away.
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('[data-testid="portico-search"]')?.isConnected, null, { timeout: 2000 });
  assert.equal(await field.inputValue(), '');
  await page.keyboard.press('Escape');
  await field.waitFor({ state: 'hidden', timeout: 2000 });

  // Ctrl+K, from the button the focus went back to.
  await page.keyboard.press('Control+k');
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  await search(page, incidents);
  assert.deepEqual(labelsIn(await shown(page)), [['Pages', [incidents]]]);
  // Ctrl+K in the field keeps the search and selects it, to type anew; "/" in the field is text.
  await page.keyboard.press('Control+k');
  assert.equal(await page.evaluate(() => { const f = document.activeElement; return f.value.slice(f.selectionStart, f.selectionEnd); }), incidents);
  await page.keyboard.press('End');
  await page.keyboard.type('/');
  assert.equal(await field.inputValue(), `${incidents}/`);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await field.waitFor({ state: 'hidden', timeout: 2000 });

  // From the launchpad's frame (portico's own view), where a click leaves the focus.
  await launchpad.getByTestId('home-greeting').click();
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'IFRAME');
  await page.keyboard.press('/');
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  await search(page, nav.apps['service-status']);
  assert.equal((await shown(page)).groups[0][1][0][0], nav.apps['service-status']);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await field.waitFor({ state: 'hidden', timeout: 2000 });

  // Typing "/" in the launchpad's filter is typing: no search.
  const filter = launchpad.getByTestId('home-filter');
  await filter.click();
  await page.keyboard.type('a/b');
  assert.equal(await filter.inputValue(), 'a/b');
  assert.equal(await field.isVisible(), false);
  // Ctrl+K there opens the search all the same.
  await page.keyboard.press('Control+k');
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  assert.equal(await filter.inputValue(), 'a/b');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the shortcut on a phone opens the field the overflow menu opens', async () => {
  const { context, page, errors } = await signedIn('de-DE', `${demo.baseUrl}/home`, 'alice', PHONE);
  await frameWithUrl(page, '/shell/home.html');
  const directory = (await navLabels(page)).apps['team-directory'];
  const field = page.getByTestId('luigi-search-input');
  assert.equal(await field.isVisible(), false);
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press('/');
  await field.waitFor({ state: 'visible', timeout: 2000 });
  await focused(page, 'luigi-search-input');
  await search(page, directory);
  assert.deepEqual(labelsIn(await shown(page)), [['Apps', [directory]]]);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await field.waitFor({ state: 'hidden', timeout: 2000 });
  assert.deepEqual(await overflowing(page), []);
  assert.deepEqual(errors, []);
  await context.close();
});

// ---------------------------------------------------------------------------------------------------
// The user's pick of language

test('the profile menu switches an English browser to German on the same page, and the pick sticks', async () => {
  const { context, page, errors } = await signedIn('en-US', `${demo.baseUrl}/home/service-status/overview`, 'alice');
  await frameWithUrl(page, '/apps/service-status/overview');
  await page.getByTestId('luigi-topnav-profile-btn').click();
  // The other language, named in its own words (someone who cannot read this one still finds theirs).
  const entry = page.locator('[data-testid="profile-language-de"]');
  await entry.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal((await entry.innerText()).trim(), 'Deutsch');
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/home/service-status/overview', { timeout: 10000 }),
    entry.locator('a').click(),
  ]);
  await page.waitForFunction(() => document.documentElement.lang === 'de', null, { timeout: 10000 });
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  assert.equal(await page.evaluate(() => Luigi.i18n().getCurrentLocale()), 'de');
  await page.getByTestId('nav-service-status').filter({ hasText: 'Dienststatus' }).first().waitFor({ timeout: 10000 });
  // The pick outlives the page: a new tab of the same browser is German too, though it asks for English.
  const again = await context.newPage();
  await again.goto(`${demo.baseUrl}/home`);
  const home = await frameWithUrl(again, '/shell/home.html');
  await home.getByTestId('home-greeting').filter({ hasText: /^Willkommen, / }).waitFor({ timeout: 10000 });
  assert.equal(await home.evaluate(() => document.documentElement.lang), 'de');
  // And back: the German menu offers "English".
  await again.getByTestId('luigi-topnav-profile-btn').click();
  const back = again.locator('[data-testid="profile-language-en"]');
  await back.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal((await back.innerText()).trim(), 'English');
  await Promise.all([
    again.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: 10000 }),
    back.locator('a').click(),
  ]);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the sign-in page speaks German and offers English on the same page', async () => {
  const context = await browser.newContext({ locale: 'de-DE', viewport: DESKTOP });
  const page = await context.newPage();
  await page.goto(`${demo.baseUrl}/home/team-directory`);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), `Bei ${TENANT} anmelden`);
  assert.equal((await page.getByTestId('sign-in-dave').innerText()).trim(), 'Als dave anmelden');
  await assertAccessible(page, 'the German sign-in page');
  await page.screenshot({ path: path.join(SHOTS, 'i18n-de-sign-in.png') });
  // English, on the same page, still on its way to the Team Directory.
  await page.getByTestId('language-en').click();
  await page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: 10000 });
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), `Sign in to ${TENANT}`);
  await page.getByTestId('sign-in-dave').click();
  await page.waitForURL((url) => url.pathname === '/home/team-directory', { timeout: 10000 });
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await context.close();
});
