// The portal in a real browser: Debian's Chromium, headless, driven by playwright-core, with
// JavaScript turned off (the pages must work without it). Run by the Rust test
// `browser::the_portal_works_in_chromium`, which starts the server and checks the store
// afterwards; on its own: PORTAL_URL=http://127.0.0.1:8080 HELSE_PLAYWRIGHT=<node_modules>
// HELSE_CHROMIUM=/usr/bin/chromium node portal.mjs
//
// Kari signs in, picks her own record, registers an organ-donor statement; her GP signs in
// (in English) and sees it in her summary, critical information first; Kari sees the GP's
// look in her access log.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.HELSE_PLAYWRIGHT, 'noop.js'));
const { chromium } = require('playwright-core');

const base = process.env.PORTAL_URL;
const shots = process.env.SCREENSHOTS;
const password = 'correct horse battery staple';

function check(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.HELSE_CHROMIUM,
  headless: true,
  // As root in a sandbox without a network: no Chromium sandbox, and no calls home.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

async function person(locale) {
  const context = await browser.newContext({ javaScriptEnabled: false, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  return { context, page };
}

async function signIn(page, username) {
  await page.goto(`${base}/portal`);
  check(new URL(page.url()).pathname === '/portal/login', `${username}: the portal starts at the sign-in page`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('form.signin button[type=submit]');
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

let current;
try {
  // 1. Kari registers her donor statement (Norwegian).
  let kari = await person('nb-NO');
  current = kari.page;
  await signIn(kari.page, 'kari');
  check(new URL(kari.page.url()).pathname === '/portal/choose', 'Kari acts for others too: she picks whose record');
  await kari.page.check('input[name=patient][value=kari]');
  await kari.page.click('form button[type=submit] >> nth=-1');
  check(new URL(kari.page.url()).pathname === '/portal/summary', 'her summary opens');
  check((await kari.page.textContent('h1')) === 'Mitt sammendrag', 'in Norwegian');
  await kari.page.click('nav >> text=Organdonasjon');
  await kari.page.check('input[name=statement][value=willing-with-restrictions]');
  await kari.page.check('input[name=organ][value="64033007"]');
  await kari.page.fill('input[name=kin1]', 'Ola Nordmann');
  await kari.page.click('form.donor button[type=submit]');
  check((await kari.page.textContent('p.done')).includes('Erklæringen er lagret'), 'the statement is saved');
  const now = await kari.page.textContent('#current');
  check(now.includes('med unntak') && now.includes('Nyrer') && now.includes('Ola Nordmann'),
    `the current statement reads back: ${now.trim()}`);
  await shot(kari.page, '1-donor-statement');
  await kari.page.click('header form.signout button');
  check(new URL(kari.page.url()).pathname === '/portal/login', 'Kari signs out');
  await kari.context.close();

  // 2. Her GP (in English) opens her summary: critical information first, the statement in
  //    the advance directives.
  const gp = await person('en-GB');
  current = gp.page;
  await signIn(gp.page, 'gp');
  check(new URL(gp.page.url()).pathname === '/portal/patients', 'the GP starts at the patient list');
  await gp.page.click('a[href="/portal/patients/kari"]');
  check((await gp.page.textContent('h1')) === 'Patient summary', 'the summary, in English');
  const classes = await gp.page.$$eval('main section', (s) => s.map((x) => x.className));
  check(classes[0] === 'critical' && classes[1] === 'critical', `critical information first: ${classes.join(',')}`);
  const directives = await gp.page.textContent('#s-42348-3');
  check(directives.includes('I want to be an organ donor, with exceptions') && directives.includes('Kidneys'),
    `the donor statement is in the advance directives: ${directives.trim()}`);
  await shot(gp.page, '2-practitioner-summary');
  await gp.page.click('header form.signout button');
  await gp.context.close();

  // 3. Kari sees the GP's look in her access log (read entries are stored within moments).
  kari = await person('nb-NO');
  current = kari.page;
  await signIn(kari.page, 'kari');
  await kari.page.check('input[name=patient][value=kari]');
  await kari.page.click('form button[type=submit] >> nth=-1');
  await kari.page.click('nav >> text=Hvem har sett journalen min');
  let seen = false;
  for (let i = 0; i < 40 && !seen; i++) {
    const rows = await kari.page.$$eval('table.log tbody tr', (r) => r.map((x) => x.textContent));
    seen = rows.some((r) => r.includes('Greta Pedersen') && r.includes('Åpnet sammendraget'));
    if (!seen) {
      await new Promise((r) => setTimeout(r, 100));
      await kari.page.reload();
    }
  }
  check(seen, "the GP's opening of her summary is in her access log");
  await shot(kari.page, '3-access-log');
  await kari.context.close();
  console.log('portal: every step passed');
} catch (e) {
  if (current && shots) await current.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(e.stack || String(e));
  if (current) console.error((await current.content().catch(() => '')).slice(0, 4000));
  process.exitCode = 1;
} finally {
  await browser.close();
}
