// Drives the runnel web console in Debian's Chromium through playwright-core
// (no bundled browser; nothing is downloaded). Run by tests/e2e/test_console.py:
//
//   node drive.mjs <endpoint> <stream-name> <output-dir>
//
// Steps: open /console, create a stream with the form, wait for ACTIVE, open
// the stream page, tail it in the live viewer, put records with the page's
// form and see them decoded, see the throughput chart show data, split a
// shard and see the shard map change, follow ChildShards in the viewer.
// Screenshots go to <output-dir>. Exit code 0 only if every step passed.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [endpoint, stream, outDir] = process.argv.slice(2);
if (!endpoint || !stream || !outDir) {
  console.error('usage: node drive.mjs <endpoint> <stream-name> <output-dir>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const STEP_TIMEOUT_MS = 20000;

const userDataDir = mkdtempSync(join(tmpdir(), 'runnel-console-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1360, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(STEP_TIMEOUT_MS);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
});
page.on('dialog', (d) => d.accept()); // the split confirmation

let step = '';
const t0 = Date.now();
function begin(name) {
  step = name;
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${name}`);
}
async function shot(name, fullPage = true) {
  // A transient toast would cover part of the page.
  await page.evaluate(() => {
    const t = document.getElementById('toast');
    if (t) t.hidden = true;
  });
  await page.screenshot({ path: join(outDir, name), fullPage });
}
function check(cond, message) {
  if (!cond) throw new Error(message);
}

let failed = false;
try {
  begin('open /console');
  await page.goto(`${endpoint}/console`);
  await page.getByRole('heading', { name: /Data streams/ }).waitFor();
  await page.locator('[data-testid=streams-table]').waitFor();

  begin('create a stream with the form (2 provisioned shards)');
  const form = page.locator('[data-testid=create-stream]');
  await form.locator('input[name=name]').fill(stream);
  await form.locator('select[name=mode]').selectOption('PROVISIONED');
  await form.locator('input[name=shards]').fill('2');
  await form.getByRole('button', { name: 'Create stream' }).click();

  begin('wait until the streams list shows it ACTIVE with 2 open shards');
  const row = page.locator(`tr[data-stream="${stream}"]`);
  await row.locator('[data-status=ACTIVE]').waitFor();
  check((await row.locator('td.num').first().textContent()).trim() === '2', 'open shard count is not 2');

  begin('open the stream page: shard map with 2 open shards');
  await row.getByRole('link', { name: stream }).click();
  await page.locator('[data-testid=shard-map][data-open="2"][data-closed="0"]').waitFor();
  await page.locator('[data-testid=incoming-chart]').waitFor();

  begin('open the live viewer (TRIM_HORIZON) and put records with the form');
  await page.locator('[data-testid=open-viewer]').click();
  await page.locator('[data-testid=tail-toggle]', { hasText: 'Stop' }).waitFor();
  await page.locator('[data-testid=tail-toggle]').click(); // stop the LATEST tail…
  await page.locator('[data-testid=position]').selectOption('TRIM_HORIZON');
  await page.locator('[data-testid=tail-toggle]').click(); // …and tail from the oldest
  await page.locator('[data-reader][data-state=reading]').nth(1).waitFor();
  const docs = [
    ['alice', { event: 'signup', user: 'alice', plan: 'pro' }],
    ['bob', { event: 'purchase', user: 'bob', amount: 42.5, items: ['book', 'pen'] }],
    ['carol', { event: 'view', user: 'carol', page: '/pricing' }],
  ];
  for (const [key, doc] of docs) {
    await page.locator('[data-testid=put-key]').fill(key);
    await page.locator('[data-testid=put-data]').fill(JSON.stringify(doc));
    await page.locator('[data-testid=put-submit]').click();
    await page.locator('[data-testid=put-result]', { hasText: 'sequence number' }).waitFor();
    await page.locator('[data-testid=put-result]').evaluate((el) => { el.textContent = ''; });
  }
  await page.locator('[data-testid=put-samples]').click();

  begin('see the records in the viewer, decoded and pretty-printed');
  for (const [key, doc] of docs) {
    const rec = page.locator(`tr[data-testid=record][data-partition-key="${key}"]`);
    await rec.waitFor();
    const text = await rec.locator('pre.data').textContent();
    check(text === JSON.stringify(doc, null, 2), `record ${key} shows ${JSON.stringify(text)}`);
    check(/^\d{20,}$/.test(await rec.getAttribute('data-seq')), `record ${key} has no sequence number`);
    check(/^shardId-\d+$/.test(await rec.getAttribute('data-shard')), `record ${key} has no shard`);
  }
  await page.waitForFunction(() => document.querySelectorAll('tr[data-testid=record]').length >= 13);
  await shot('console-viewer.png');

  begin('stream page: the throughput chart shows the records');
  await page.goto(`${endpoint}/console#/stream/${encodeURIComponent(stream)}`);
  await page.waitForFunction(() => {
    const c = document.querySelector('[data-testid=incoming-chart]');
    return c && Number(c.dataset.total) >= 13;
  });

  begin('split a shard at its midpoint; the shard map shows 3 open and 1 closed');
  await page.locator('[data-testid=shard-map][data-open="2"]').waitFor();
  await page.locator('button[data-split="shardId-000000000000"]:not([disabled])').click();
  await page.locator('[data-testid=shard-map][data-open="3"][data-closed="1"]').waitFor();
  const closed = page.locator('[data-testid=shard-map] g.shard.closed');
  check((await closed.getAttribute('data-shard-id')) === 'shardId-000000000000', 'the split shard is not the closed one');
  const ranges = await page.locator('[data-testid=shard-map] g.shard.open').evaluateAll((gs) => gs.length);
  check(ranges === 3, `expected 3 open shard bars, got ${ranges}`);
  await page.locator('[data-status=ACTIVE]').first().waitFor();

  begin('shard-level metrics: enable them from the button');
  await page.locator('[data-testid=shard-metrics]', { hasText: 'Enable' }).click();
  await page.locator('[data-testid=shard-metrics]', { hasText: 'Disable' }).waitFor();

  begin('viewer follows ChildShards: a record put after the split shows from a child shard');
  await page.goto(`${endpoint}/console#/stream/${encodeURIComponent(stream)}/records`);
  await page.locator('[data-testid=tail-toggle]', { hasText: 'Stop' }).waitFor();
  await page.locator('[data-testid=tail-toggle]').click();
  await page.locator('[data-testid=position]').selectOption('TRIM_HORIZON');
  await page.locator('[data-testid=tail-toggle]').click();
  await page.locator('[data-reader="shardId-000000000000"][data-state=closed]').waitFor();
  await page.locator('[data-reader="shardId-000000000002"][data-state=reading]').waitFor();
  await page.locator('[data-reader="shardId-000000000003"][data-state=reading]').waitFor();
  await page.locator('[data-testid=put-samples]').click();
  await page.locator('tr[data-testid=record][data-shard="shardId-000000000002"], tr[data-testid=record][data-shard="shardId-000000000003"]').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('tr[data-testid=record]').length >= 23);

  begin('streams list: the sparkline shows non-zero throughput');
  await page.goto(`${endpoint}/console#/`);
  await page.waitForFunction((name) => {
    const sp = document.querySelector(`tr[data-stream="${name}"] svg.sparkline`);
    return sp && Number(sp.dataset.total) >= 23;
  }, stream);
  await shot('console-streams.png', false);

  begin('screenshot of the stream page');
  await page.goto(`${endpoint}/console#/stream/${encodeURIComponent(stream)}`);
  await page.locator('[data-testid=shard-map][data-open="3"]').waitFor();
  await page.waitForFunction(() => {
    const c = document.querySelector('[data-testid=incoming-chart]');
    return c && Number(c.dataset.total) > 0 && c.querySelectorAll('.legend span').length >= 3;
  });
  await shot('console.png');

  check(!problems.length, `the page reported errors:\n${problems.join('\n')}`);
  console.log(`ok: all console steps passed in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
} catch (e) {
  failed = true;
  console.error(`FAILED at step "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  try {
    await shot('console-failure.png');
    console.error(`screenshot: ${join(outDir, 'console-failure.png')}`);
  } catch {
    /* the browser is gone */
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
