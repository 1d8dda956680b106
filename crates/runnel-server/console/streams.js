// The streams list: one row per stream with a last-hour throughput sparkline,
// and the "Create stream" form.

import { kinesis, listAll, metricSeries } from './api.js';
import { sparkline } from './charts.js';
import { h, clear, every, act, statusBadge, modeOf, fmtHours, fmtNumber, toast } from './ui.js';

const REFRESH_MS = 4000;

export function streamsPage(root) {
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { class: 'list', 'data-testid': 'streams-table' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Capacity mode'),
        h('th', { class: 'num' }, 'Open shards'), h('th', { class: 'num' }, 'Retention'),
        h('th', {}, 'Incoming records, last hour')),
    ),
    tbody,
  );
  const count = h('span', { class: 'muted' });
  clear(
    root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Data streams ', count)),
    h('div', { class: 'grid-2' }, h('section', { class: 'card wide' }, table), createForm(() => refresh.now())),
  );

  const refresh = every(REFRESH_MS, async () => {
    const names = (await listAll('ListStreams', { Limit: 100 }, 'StreamNames')).sort();
    const summaries = await Promise.all(
      names.map((n) =>
        kinesis('DescribeStreamSummary', { StreamName: n })
          .then((r) => r.StreamDescriptionSummary)
          .catch(() => null),
      ),
    );
    const rows = summaries.filter(Boolean);
    const { from, to, series } = await metricSeries(
      rows.map((sm, i) => ({ id: `s${i}`, metric: 'IncomingRecords', dims: { StreamName: sm.StreamName } })),
    );
    count.textContent = `(${rows.length})`;
    if (!rows.length) {
      clear(tbody, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No streams yet — create one with the form.')));
      return;
    }
    clear(
      tbody,
      rows.map((sm, i) => {
        const pts = series[`s${i}`] || [];
        const lastMinute = pts.length && pts[pts.length - 1][0] >= to - 120 ? pts[pts.length - 1][1] : 0;
        return h(
          'tr',
          { 'data-stream': sm.StreamName },
          h('td', {}, h('a', { href: `#/stream/${encodeURIComponent(sm.StreamName)}`, class: 'strong' }, sm.StreamName)),
          h('td', {}, statusBadge(sm.StreamStatus)),
          h('td', {}, modeOf(sm) === 'ON_DEMAND' ? 'On-demand' : 'Provisioned'),
          h('td', { class: 'num' }, sm.OpenShardCount),
          h('td', { class: 'num' }, fmtHours(sm.RetentionPeriodHours)),
          h(
            'td',
            { class: 'spark' },
            sparkline(pts, from, to),
            h('span', { class: 'muted small' }, `${fmtNumber(lastMinute)}/min`),
          ),
        );
      }),
    );
  });
  return refresh;
}

function createForm(onCreated) {
  const name = h('input', { name: 'name', required: true, maxlength: 128, pattern: '[a-zA-Z0-9_.\\-]+', placeholder: 'orders', autocomplete: 'off' });
  const mode = h('select', { name: 'mode' }, h('option', { value: 'PROVISIONED' }, 'Provisioned'), h('option', { value: 'ON_DEMAND' }, 'On-demand'));
  const shards = h('input', { name: 'shards', type: 'number', min: 1, max: 10000, value: 2 });
  const shardsRow = h('label', {}, 'Shards', shards);
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create stream');
  mode.addEventListener('change', () => {
    shardsRow.hidden = mode.value === 'ON_DEMAND';
  });
  const form = h(
    'form',
    { class: 'card form', 'data-testid': 'create-stream' },
    h('h2', {}, 'Create stream'),
    h('label', {}, 'Name', name),
    h('label', {}, 'Capacity mode', mode),
    shardsRow,
    h('p', { class: 'muted small' }, 'Provisioned: 1 MB/s or 1,000 records/s in per shard. On-demand starts with 4 shards and scales itself.'),
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { StreamName: name.value.trim() };
    if (mode.value === 'ON_DEMAND') body.StreamModeDetails = { StreamMode: 'ON_DEMAND' };
    else {
      body.ShardCount = Number(shards.value);
      body.StreamModeDetails = { StreamMode: 'PROVISIONED' };
    }
    const ok = await act(submit, () => kinesis('CreateStream', body));
    if (ok !== undefined) {
      name.value = '';
      toast(`Stream ${body.StreamName} is being created.`, 'ok');
      onCreated();
    }
  });
  return form;
}
