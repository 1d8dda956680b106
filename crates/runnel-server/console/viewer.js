// The live record viewer: tails every shard with GetShardIterator +
// GetRecords (at most one call per shard per 250 ms), follows ChildShards
// after a reshard (a child starts once all its parents are read to the end),
// decodes base64 Data and pretty-prints JSON. Plus a small PutRecord form.

import { kinesis, listAll, decodeData, utf8ToBase64 } from './api.js';
import { h, clear, act, toast, errorText, sleep, fmtTime, shortShard } from './ui.js';

const POLL_MIN_MS = 250; // GetRecords per shard: never more often (AWS allows 5/s)
const POLL_IDLE_MS = 1000; // at the tip with nothing new
const ROWS_MAX = 300;
const GET_RECORDS_LIMIT = 500;

/** Tails a stream; calls onRecords(shardId, records) and onChange() as readers come and go. */
export class Tail {
  constructor(stream, position, onRecords, onChange) {
    this.stream = stream;
    this.position = position;
    this.onRecords = onRecords;
    this.onChange = onChange;
    this.running = false;
    this.readers = new Map(); // shardId -> {state: 'reading'|'closed'|'waiting'|'error', records, note}
    this.parents = new Map(); // child shardId -> its ParentShards
  }

  async start() {
    this.running = true;
    const filter = this.position === 'LATEST' ? { Type: 'AT_LATEST' } : { Type: 'FROM_TRIM_HORIZON' };
    const shards = await listAll('ListShards', { StreamName: this.stream, ShardFilter: filter }, 'Shards', 100);
    const listed = new Set(shards.map((s) => s.ShardId));
    for (const s of shards) {
      const ps = [s.ParentShardId, s.AdjacentParentShardId].filter(Boolean);
      // Start at the roots; a child is reached through its parents' ChildShards.
      if (this.position === 'LATEST' || !ps.some((p) => listed.has(p))) this.read(s.ShardId, this.position);
    }
  }

  stop() {
    this.running = false;
  }

  set(shardId, patch) {
    this.readers.set(shardId, { records: 0, ...(this.readers.get(shardId) || {}), ...patch });
    this.onChange();
  }

  childReady(child) {
    const ps = this.parents.get(child) || [];
    return ps.every((p) => !this.readers.has(p) || this.readers.get(p).state === 'closed');
  }

  async read(shardId, type, after) {
    if (this.readers.has(shardId) && this.readers.get(shardId).state !== 'waiting') return;
    this.set(shardId, { state: 'reading', note: type });
    let it = null;
    let lastSeq = after || null;
    while (this.running) {
      const began = performance.now();
      let wait = POLL_MIN_MS;
      try {
        if (!it) {
          const req = { StreamName: this.stream, ShardId: shardId, ShardIteratorType: lastSeq ? 'AFTER_SEQUENCE_NUMBER' : type };
          if (lastSeq) req.StartingSequenceNumber = lastSeq;
          it = (await kinesis('GetShardIterator', req)).ShardIterator;
        }
        const r = await kinesis('GetRecords', { ShardIterator: it, Limit: GET_RECORDS_LIMIT });
        const recs = r.Records || [];
        if (recs.length && this.running) {
          lastSeq = recs[recs.length - 1].SequenceNumber;
          this.set(shardId, { records: this.readers.get(shardId).records + recs.length, behind: r.MillisBehindLatest });
          this.onRecords(shardId, recs);
        } else if (this.readers.get(shardId).behind !== r.MillisBehindLatest) {
          this.set(shardId, { behind: r.MillisBehindLatest });
        }
        it = r.NextShardIterator || null;
        if (!it) {
          // Closed and read to the end: hand over to the children.
          this.set(shardId, { state: 'closed', note: 'read to the end' });
          for (const c of r.ChildShards || []) {
            this.parents.set(c.ShardId, c.ParentShards || []);
            if (!this.readers.has(c.ShardId)) this.set(c.ShardId, { state: 'waiting', note: 'waiting for parents' });
          }
          for (const c of r.ChildShards || []) {
            if (this.childReady(c.ShardId)) this.read(c.ShardId, 'TRIM_HORIZON');
          }
          return;
        }
        if (!recs.length && !r.MillisBehindLatest) wait = POLL_IDLE_MS;
      } catch (e) {
        if (e.type === 'ExpiredIteratorException') {
          it = null; // resume after the last record seen
        } else if (e.type === 'ResourceNotFoundException') {
          this.set(shardId, { state: 'error', note: e.message });
          return;
        } else {
          this.set(shardId, { state: 'reading', note: errorText(e) });
          it = e.type === 'ProvisionedThroughputExceededException' ? it : null;
          wait = 2000;
        }
      }
      await sleep(Math.max(0, wait - (performance.now() - began)));
    }
  }
}

export function viewerPage(root, name) {
  let tail = null;
  let total = 0;
  const position = h('select', { 'data-testid': 'position' },
    h('option', { value: 'LATEST' }, 'New records (LATEST)'),
    h('option', { value: 'TRIM_HORIZON' }, 'From the oldest (TRIM_HORIZON)'));
  const toggle = h('button', { class: 'primary', 'data-testid': 'tail-toggle' }, 'Start');
  const clearBtn = h('button', {}, 'Clear');
  const status = h('div', { class: 'readers', 'data-testid': 'readers' });
  const counter = h('span', { class: 'muted', 'data-testid': 'record-count' }, '0 records');
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { class: 'list records', 'data-testid': 'records' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Arrival'), h('th', {}, 'Shard'), h('th', {}, 'Partition key'),
      h('th', {}, 'Sequence number'), h('th', {}, 'Data'))),
    tbody,
  );
  const empty = h('p', { class: 'muted empty' }, 'Nothing yet. Start tailing, then put a record.');

  const renderStatus = () => {
    if (!tail) return clear(status);
    clear(
      status,
      [...tail.readers.entries()].sort().map(([id, r]) =>
        h('span', { class: `chip ${r.state}`, title: r.note || '', 'data-reader': id, 'data-state': r.state },
          `#${shortShard(id)} ${r.state}`, r.records ? ` · ${r.records}` : '',
          r.behind ? ` · ${Math.round(r.behind / 1000)} s behind` : '')),
    );
  };

  const addRecords = (shardId, recs) => {
    empty.hidden = true;
    total += recs.length;
    counter.textContent = `${total} record${total === 1 ? '' : 's'}`;
    const rows = recs.map((rec) => {
      const d = decodeData(rec.Data);
      return h(
        'tr',
        {
          'data-testid': 'record',
          'data-partition-key': rec.PartitionKey,
          'data-shard': shardId,
          'data-seq': rec.SequenceNumber,
          'data-arrival': rec.ApproximateArrivalTimestamp,
        },
        h('td', { class: 'small nowrap' }, fmtTime(rec.ApproximateArrivalTimestamp)),
        h('td', { class: 'small nowrap', title: shardId }, `#${shortShard(shardId)}`),
        h('td', { class: 'mono small' }, rec.PartitionKey),
        h('td', { class: 'mono small seq', title: rec.SequenceNumber }, rec.SequenceNumber),
        h('td', {}, h('pre', { class: `data ${d.kind}` }, d.text), h('span', { class: 'muted small' }, `${d.kind} · ${d.bytes} B`)),
      );
    });
    // Newest arrival on top, whichever shard it came from.
    for (const row of rows) {
      const t = Number(row.dataset.arrival);
      let before = tbody.firstElementChild;
      while (before && Number(before.dataset.arrival) > t) before = before.nextElementSibling;
      tbody.insertBefore(row, before);
    }
    while (tbody.children.length > ROWS_MAX) tbody.lastElementChild.remove();
  };

  const start = async () => {
    tail = new Tail(name, position.value, addRecords, renderStatus);
    toggle.textContent = 'Stop';
    position.disabled = true;
    try {
      await tail.start();
    } catch (e) {
      toast(errorText(e), 'error');
      stop();
    }
  };
  const stop = () => {
    if (tail) tail.stop();
    toggle.textContent = 'Start';
    position.disabled = false;
  };
  toggle.addEventListener('click', () => (tail && tail.running ? stop() : start()));
  clearBtn.addEventListener('click', () => {
    tbody.replaceChildren();
    total = 0;
    counter.textContent = '0 records';
    empty.hidden = false;
  });

  clear(
    root,
    h('div', { class: 'page-head' },
      h('div', {}, h('a', { href: `#/stream/${encodeURIComponent(name)}`, class: 'muted small' }, `← ${name}`),
        h('h1', {}, 'Live records ', h('span', { class: 'muted' }, name)))),
    h(
      'div',
      { class: 'grid-2' },
      h('section', { class: 'card wide' },
        h('div', { class: 'toolbar' }, position, toggle, clearBtn, counter),
        status, table, empty),
      putForm(name),
    ),
  );
  start();
  return stop;
}

function putForm(name) {
  const key = h('input', { name: 'partition-key', value: 'user-1', required: true, maxlength: 256, 'data-testid': 'put-key' });
  const data = h('textarea', { name: 'data', rows: 6, 'data-testid': 'put-data' }, '{"event": "signup", "user": "user-1", "plan": "pro"}');
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'put-submit' }, 'Put record');
  const samples = h('button', { type: 'button', 'data-testid': 'put-samples' }, 'Put 10 samples');
  const result = h('p', { class: 'muted small mono', 'data-testid': 'put-result' });
  const form = h('form', { class: 'card form' }, h('h2', {}, 'Put a record'),
    h('label', {}, 'Partition key', key), h('label', {}, 'Data (UTF-8 text or JSON)', data),
    h('div', { class: 'toolbar' }, submit, samples), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await act(submit, () => kinesis('PutRecord', { StreamName: name, PartitionKey: key.value, Data: utf8ToBase64(data.value) }));
    if (r) result.textContent = `→ ${r.ShardId}, sequence number ${r.SequenceNumber}`;
  });
  samples.addEventListener('click', async () => {
    const events = ['view', 'click', 'add_to_cart', 'purchase'];
    const records = Array.from({ length: 10 }, (_, i) => {
      const user = `user-${1 + Math.floor(Math.random() * 50)}`;
      const doc = { event: events[i % events.length], user, amount: Math.round(Math.random() * 10000) / 100, at: new Date().toISOString() };
      return { PartitionKey: user, Data: utf8ToBase64(JSON.stringify(doc)) };
    });
    const r = await act(samples, () => kinesis('PutRecords', { StreamName: name, Records: records }));
    if (r) result.textContent = `→ ${records.length - (r.FailedRecordCount || 0)} of ${records.length} records in`;
  });
  return form;
}
