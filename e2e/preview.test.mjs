// End-to-end: `portico preview --serve` is the real shell of one tenant for one stand-in user, with a
// banner saying whose navigation it is. A team lead uses it to see what a group would see before a
// config change ships. Screenshots: target/e2e/preview-{desktop,phone}.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startPortico, startBrowser, freePort, frameWithUrl, assertAccessible, collectErrors, signInAt, sideNavLabels,
} from './harness.mjs';

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let preview; // `portico preview --serve` of the embedded demo, as dave (group demo-eng)
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  preview = await startPortico([], {
    argv: ['preview', '--tenant', 'demo', '--user', 'dave', '--serve', `127.0.0.1:${port}`],
  });
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await preview?.stop();
});

for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`the preview shows dave's navigation under a banner that says so (${kind})`, async () => {
    const phone = viewport === PHONE;
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone });
    const page = await context.newPage();
    const errors = collectErrors(page);
    try {
      await page.goto(`${preview.baseUrl}/`);
      // The sign-in page offers the stand-in user only: nobody else can be picked in a preview.
      const offered = await page.locator('[data-testid^="sign-in-"]').evaluateAll((buttons) =>
        buttons.map((b) => b.dataset.testid).filter((id) => id !== 'sign-in-again'));
      assert.deepEqual(offered, ['sign-in-dave']);
      await signInAt(page, `${preview.baseUrl}/`, 'dave');

      const banner = page.getByTestId('preview-banner');
      await banner.waitFor({ timeout: 5000 });
      assert.match(await banner.textContent(), /Preview: the navigation of dave \(groups demo-eng\) on Portico Demo Portal/);
      const box = await banner.boundingBox();
      assert.ok(box && box.width >= viewport.width - 1 && box.y + box.height <= viewport.height + 1,
        `the banner spans the bottom of the window: ${JSON.stringify(box)}`);

      // The stand-in user gets exactly dave's apps (demo-eng grants developer only).
      if (!phone) {
        assert.deepEqual(await sideNavLabels(page), ['Service Status', 'Overview', 'Team Directory']);
      }
      // An app opens through the same proxy and access decision as in the portal.
      await page.goto(`${preview.baseUrl}/home/team-directory`);
      const frame = await frameWithUrl(page, '/apps/team-directory/');
      await frame.locator('body').waitFor({ timeout: 10000 });
      // The shell's own "Loading…" fades out once the view is there (kept out of the screenshots).
      await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
      await page.screenshot({ path: path.join(SHOTS, `preview-${kind}.png`) });
      await assertAccessible(page, `the preview shell (${kind})`);
      // The admin console is platform-admin's: the preview refuses it as the portal would.
      const refused = await page.request.get(`${preview.baseUrl}/apps/admin-console/`, { headers: { accept: 'application/json' } });
      assert.equal(refused.status(), 403);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}
