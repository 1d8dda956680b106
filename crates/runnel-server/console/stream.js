// One stream: summary, shard map with split/merge, throughput and iterator-age
// charts, consumers, tags, retention and encryption.

import { kinesis, listAll, metricSeries, midpoint } from './api.js';
import { lineChart, shardColor } from './charts.js';
import { shardMap, isOpen, parentsOf, share, pct } from './shardmap.js';
import { h, clear, every, act, toast, statusBadge, modeOf, fmtHours, fmtTime, fmtMs, fmtNumber, shortShard } from './ui.js';

const REFRESH_MS = 4000;
const SHARD_SERIES_MAX = 8;
const SHARD_METRICS = ['IncomingRecords', 'IteratorAgeMilliseconds'];

export function streamPage(root, name) {
  const st = { summary: null, shards: [], selected: null };
  const head = h('div', { class: 'page-head' });
  const facts = h('dl', { class: 'facts' });
  const mapBox = h('div', { class: 'map-area' });
  const shardTable = h('div', { class: 'table-scroll' });
  const charts = h('div', { class: 'charts' });
  const monitorBtn = h('button', { class: 'small', 'data-testid': 'shard-metrics' }, 'Enable shard-level metrics');
  const consumers = h('div', {});
  const tags = h('div', {});
  const retention = retentionForm(st, () => refresh.now());
  clear(
    root,
    head,
    h('section', { class: 'card' }, facts),
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Shard map'),
        h('span', { class: 'muted small' }, 'to scale over the 128-bit hash-key space; one row per generation, closed shards hatched')),
      mapBox,
      shardTable,
    ),
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Throughput and lag'), h('span', { class: 'muted small' }, 'per minute, last hour'), monitorBtn),
      charts,
    ),
    h(
      'div',
      { class: 'grid-3' },
      h('section', { class: 'card' }, h('h2', {}, 'Retention'), retention),
      h('section', { class: 'card' }, h('h2', {}, 'Consumers'), consumers),
      h('section', { class: 'card' }, h('h2', {}, 'Tags'), tags),
    ),
  );

  monitorBtn.addEventListener('click', async () => {
    const on = shardMetricsOn(st.summary);
    const op = on ? 'DisableEnhancedMonitoring' : 'EnableEnhancedMonitoring';
    await act(monitorBtn, () => kinesis(op, { StreamName: name, ShardLevelMetrics: SHARD_METRICS }),
      on ? 'Shard-level metrics off' : 'Shard-level metrics on: per-shard lines appear as records flow');
    refresh.now();
  });

  const select = (id) => {
    st.selected = st.selected === id ? null : id;
    renderShards();
  };

  function renderShards() {
    clear(mapBox, shardMap(st.shards, { selected: st.selected, onSelect: select }));
    clear(shardTable, shardsTable(name, st, () => refresh.now(), select));
  }

  const refresh = every(REFRESH_MS, async () => {
    const [sum, shards] = await Promise.all([
      kinesis('DescribeStreamSummary', { StreamName: name }),
      listAll('ListShards', { StreamName: name }, 'Shards', 100),
    ]);
    st.summary = sum.StreamDescriptionSummary;
    st.shards = shards;
    renderHead(head, st.summary);
    renderFacts(facts, st.summary);
    renderShards();
    retention.update(st.summary);
    monitorBtn.textContent = shardMetricsOn(st.summary) ? 'Disable shard-level metrics' : 'Enable shard-level metrics';
    const [chartEls, cons, tagList] = await Promise.all([
      renderCharts(name, st),
      listAll('ListStreamConsumers', { StreamARN: st.summary.StreamARN }, 'Consumers').catch(() => null),
      kinesis('ListTagsForStream', { StreamName: name }).then((r) => r.Tags || []).catch(() => null),
    ]);
    clear(charts, chartEls);
    clear(consumers, consumersTable(cons));
    clear(tags, tagsTable(tagList));
  });
  return refresh;
}

function shardMetricsOn(summary) {
  const em = (summary && summary.EnhancedMonitoring) || [];
  return em.some((e) => (e.ShardLevelMetrics || []).some((m) => m === 'IncomingRecords' || m === 'ALL'));
}

function renderHead(head, sm) {
  clear(
    head,
    h('div', {}, h('a', { href: '#/', class: 'muted small' }, '← All streams'),
      h('h1', {}, sm.StreamName, ' ', statusBadge(sm.StreamStatus))),
    h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: `#/stream/${encodeURIComponent(sm.StreamName)}/records`, 'data-testid': 'open-viewer' }, 'Live records →')),
  );
}

function renderFacts(dl, sm) {
  const fact = (k, ...v) => h('div', { class: 'fact' }, h('dt', {}, k), h('dd', {}, ...v));
  const em = (sm.EnhancedMonitoring || []).flatMap((e) => e.ShardLevelMetrics || []);
  clear(
    dl,
    fact('ARN', h('code', {}, sm.StreamARN)),
    fact('Capacity mode', modeOf(sm) === 'ON_DEMAND' ? 'On-demand' : 'Provisioned'),
    fact('Open shards', String(sm.OpenShardCount)),
    fact('Retention', fmtHours(sm.RetentionPeriodHours)),
    fact('Encryption', sm.EncryptionType === 'KMS' ? h('span', { class: 'badge ok' }, 'KMS') : h('span', { class: 'badge muted' }, sm.EncryptionType || 'NONE')),
    fact('Consumers', String(sm.ConsumerCount ?? 0)),
    fact('Max record size', `${sm.MaxRecordSizeInKiB ?? 1024} KiB`),
    fact('Created', fmtTime(sm.StreamCreationTimestamp, true)),
    fact('Shard-level metrics', em.length ? em.join(', ') : 'off'),
  );
}

function shardsTable(name, st, after, select) {
  const active = st.summary && st.summary.StreamStatus === 'ACTIVE';
  const sorted = [...st.shards].sort((a, b) => {
    if (isOpen(a) !== isOpen(b)) return isOpen(a) ? -1 : 1;
    return BigInt(a.HashKeyRange.StartingHashKey) < BigInt(b.HashKeyRange.StartingHashKey) ? -1 : 1;
  });
  const open = sorted.filter(isOpen);
  const nextOf = new Map();
  for (let i = 0; i + 1 < open.length; i++) {
    if (BigInt(open[i].HashKeyRange.EndingHashKey) + 1n === BigInt(open[i + 1].HashKeyRange.StartingHashKey)) {
      nextOf.set(open[i].ShardId, open[i + 1].ShardId);
    }
  }
  const rows = sorted.map((sh) => {
    const range = sh.HashKeyRange;
    const canSplit = isOpen(sh) && BigInt(range.EndingHashKey) > BigInt(range.StartingHashKey);
    const split = h('button', { class: 'small', disabled: !active || !canSplit, 'data-split': sh.ShardId, title: 'SplitShard at the midpoint of its hash-key range' }, 'Split');
    split.addEventListener('click', async () => {
      const mid = midpoint(range).toString();
      if (!window.confirm(`Split ${sh.ShardId} at hash key ${mid}?\nIt closes and two child shards take over its halves.`)) return;
      await act(split, () => kinesis('SplitShard', { StreamName: name, ShardToSplit: sh.ShardId, NewStartingHashKey: mid }),
        `Splitting ${sh.ShardId}`);
      after();
    });
    const next = nextOf.get(sh.ShardId);
    let merge = null;
    if (next) {
      merge = h('button', { class: 'small', disabled: !active, 'data-merge': sh.ShardId, title: `MergeShards with the adjacent ${next}` }, `Merge with #${shortShard(next)}`);
      merge.addEventListener('click', async () => {
        if (!window.confirm(`Merge ${sh.ShardId} and ${next}?\nBoth close and one child shard takes over their ranges.`)) return;
        await act(merge, () => kinesis('MergeShards', { StreamName: name, ShardToMerge: sh.ShardId, AdjacentShardToMerge: next }),
          `Merging ${sh.ShardId} and ${next}`);
        after();
      });
    }
    return h(
      'tr',
      { class: [sh.ShardId === st.selected && 'selected', !isOpen(sh) && 'dim'], 'data-shard-row': sh.ShardId },
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => select(sh.ShardId) }, sh.ShardId)),
      h('td', {}, isOpen(sh) ? h('span', { class: 'badge ok' }, 'open') : h('span', { class: 'badge muted' }, 'closed')),
      h('td', { class: 'num' }, pct(share(sh))),
      h('td', { class: 'mono small', title: `${range.StartingHashKey} … ${range.EndingHashKey}` }, abbrevKey(range.StartingHashKey), ' … ', abbrevKey(range.EndingHashKey)),
      h('td', { class: 'small' }, parentsOf(sh).join(', ') || '–'),
      h('td', {}, isOpen(sh) ? h('div', { class: 'row-actions' }, split, merge) : ''),
    );
  });
  return h(
    'table',
    { class: 'list compact', 'data-testid': 'shards-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Shard'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Key space'),
      h('th', {}, 'Hash-key range'), h('th', {}, 'Parents'), h('th', {}, 'Actions'))),
    h('tbody', {}, rows),
  );
}

/** 2^128-scale decimal keys are 39 digits; show the first and last few. */
function abbrevKey(k) {
  return k.length > 14 ? `${k.slice(0, 6)}…${k.slice(-4)}` : k;
}

async function renderCharts(name, st) {
  const perShard = shardMetricsOn(st.summary);
  const shown = st.shards.filter(isOpen).slice(0, SHARD_SERIES_MAX);
  const closed = st.shards.filter((sh) => !isOpen(sh)).slice(-SHARD_SERIES_MAX);
  const queries = [
    { id: 'in', metric: 'IncomingRecords', dims: { StreamName: name } },
    { id: 'age', metric: 'GetRecords.IteratorAgeMilliseconds', dims: { StreamName: name }, stat: 'Maximum' },
  ];
  const shardList = perShard ? [...shown, ...closed] : [];
  shardList.forEach((sh, i) => {
    queries.push({ id: `in${i}`, metric: 'IncomingRecords', dims: { StreamName: name, ShardId: sh.ShardId } });
    queries.push({ id: `age${i}`, metric: 'IteratorAgeMilliseconds', dims: { StreamName: name, ShardId: sh.ShardId }, stat: 'Maximum' });
  });
  const { from, to, series } = await metricSeries(queries);
  // Closed shards only when they carried data in the window.
  const keep = shardList
    .map((sh, i) => ({ sh, i }))
    .filter(({ sh, i }) => isOpen(sh) || (series[`in${i}`] || []).some(([, v]) => v > 0));
  const incoming = perShard
    ? keep.map(({ sh, i }) => ({ label: sh.ShardId, color: shardColor(sh.ShardId), points: series[`in${i}`] || [] }))
    : [{ label: 'IncomingRecords (stream)', points: series.in || [] }];
  const ages = perShard
    ? keep.map(({ sh, i }) => ({ label: sh.ShardId, color: shardColor(sh.ShardId), points: series[`age${i}`] || [] }))
    : [{ label: 'GetRecords.IteratorAgeMilliseconds (max)', points: series.age || [] }];
  const total = (series.in || []).reduce((a, [, v]) => a + v, 0);
  return [
    lineChart({
      title: `Incoming records per minute${perShard ? ' by shard' : ''} — ${fmtNumber(total)} in the last hour`,
      series: incoming,
      from,
      to,
      testid: 'incoming-chart',
    }),
    lineChart({
      title: `Iterator age (max)${perShard ? ' by shard' : ''}`,
      series: ages,
      from,
      to,
      gap: null,
      format: fmtMs,
      testid: 'age-chart',
      empty: 'no reads yet',
    }),
  ];
}

function retentionForm(st, after) {
  const hours = h('input', { type: 'number', min: 24, max: 8760, step: 1, name: 'hours', 'data-testid': 'retention-hours' });
  const current = h('p', { class: 'muted small' });
  const submit = h('button', { type: 'submit' }, 'Change retention');
  let dirty = false;
  hours.addEventListener('input', () => {
    dirty = true;
  });
  const form = h('form', { class: 'form inline' }, current, h('label', {}, 'Hours (24–8760)', hours), submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const want = Number(hours.value);
    const have = st.summary.RetentionPeriodHours;
    if (want === have) return toast(`Retention is already ${have} h.`);
    const op = want > have ? 'IncreaseStreamRetentionPeriod' : 'DecreaseStreamRetentionPeriod';
    const ok = await act(submit, () => kinesis(op, { StreamName: st.summary.StreamName, RetentionPeriodHours: want }),
      `Retention ${want > have ? 'increased' : 'decreased'} to ${want} h`);
    if (ok !== undefined) dirty = false;
    after();
  });
  form.update = (sm) => {
    current.textContent = `Records are kept ${fmtHours(sm.RetentionPeriodHours)}. Decreasing it drops older records at the next sweep.`;
    if (!dirty && document.activeElement !== hours) hours.value = sm.RetentionPeriodHours;
  };
  return form;
}

function consumersTable(list) {
  if (list === null) return h('p', { class: 'muted' }, 'Could not list consumers.');
  if (!list.length) return h('p', { class: 'muted' }, 'No enhanced fan-out consumers registered.');
  return h(
    'table',
    { class: 'list compact' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Registered'))),
    h('tbody', {}, list.map((c) => h('tr', { title: c.ConsumerARN },
      h('td', {}, c.ConsumerName), h('td', {}, statusBadge(c.ConsumerStatus)), h('td', { class: 'small' }, fmtTime(c.ConsumerCreationTimestamp, true))))),
  );
}

function tagsTable(list) {
  if (list === null) return h('p', { class: 'muted' }, 'Could not list tags.');
  if (!list.length) return h('p', { class: 'muted' }, 'No tags.');
  return h(
    'table',
    { class: 'list compact' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Value'))),
    h('tbody', {}, list.map((t) => h('tr', {}, h('td', {}, t.Key), h('td', {}, t.Value || '')))),
  );
}
