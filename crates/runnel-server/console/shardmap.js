// The shard map: every listed shard drawn to scale over the 128-bit hash-key
// space, one row per generation (a child sits below its parents), with lines
// from each parent to its children. Open shards are solid, closed ones hatched.

import { s, h, shortShard } from './ui.js';
import { fraction, HASH_KEY_SPACE } from './api.js';
import { shardColor } from './charts.js';

export const isOpen = (shard) => !('EndingSequenceNumber' in (shard.SequenceNumberRange || {}));
export const parentsOf = (shard) => [shard.ParentShardId, shard.AdjacentParentShardId].filter(Boolean);

/** Generation of each shard: 0 without a listed parent, else one below its deepest parent. */
export function generations(shards) {
  const byId = new Map(shards.map((sh) => [sh.ShardId, sh]));
  const depth = new Map();
  const visit = (sh, guard = 0) => {
    if (depth.has(sh.ShardId)) return depth.get(sh.ShardId);
    const ps = parentsOf(sh).filter((p) => byId.has(p));
    const d = guard > 64 || !ps.length ? 0 : 1 + Math.max(...ps.map((p) => visit(byId.get(p), guard + 1)));
    depth.set(sh.ShardId, d);
    return d;
  };
  shards.forEach((sh) => visit(sh));
  return depth;
}

export function share(shard) {
  const start = BigInt(shard.HashKeyRange.StartingHashKey);
  const end = BigInt(shard.HashKeyRange.EndingHashKey);
  return fraction(end - start + 1n);
}

export function pct(f) {
  if (f >= 0.1) return `${(f * 100).toFixed(1)}%`;
  if (f >= 0.001) return `${(f * 100).toFixed(2)}%`;
  return '<0.1%';
}

/** The SVG map. `selected` highlights one shard; `onSelect(id)` on click. */
export function shardMap(shards, { selected, onSelect } = {}) {
  const W = 900;
  const L = 8;
  const R = 8;
  const AXIS = 22;
  const ROW = 34;
  const GAP = 22;
  const depth = generations(shards);
  const rows = Math.max(0, ...depth.values()) + 1;
  const H = AXIS + rows * ROW + (rows - 1) * GAP + 6;
  const x = (key) => L + fraction(key) * (W - L - R);
  const rowY = (d) => AXIS + d * (ROW + GAP);
  const open = shards.filter(isOpen);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'shardmap',
    'data-testid': 'shard-map',
    'data-open': open.length,
    'data-closed': shards.length - open.length,
    role: 'img',
    'aria-label': `${open.length} open and ${shards.length - open.length} closed shards over the hash-key space`,
  });
  svg.append(
    s(
      'defs',
      {},
      s(
        'pattern',
        { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
        s('rect', { width: 6, height: 6, fill: '#eef0f3' }),
        s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#c5cad3', 'stroke-width': 2 }),
      ),
    ),
  );
  // Axis: quarter marks of the key space.
  const ticks = [
    [0n, '0'],
    [HASH_KEY_SPACE / 4n, '2¹²⁶'],
    [HASH_KEY_SPACE / 2n, '2¹²⁷'],
    [(HASH_KEY_SPACE / 4n) * 3n, '3·2¹²⁶'],
    [HASH_KEY_SPACE, '2¹²⁸−1'],
  ];
  ticks.forEach(([k, label], i) => {
    const anchor = i === 0 ? 'start' : i === ticks.length - 1 ? 'end' : 'middle';
    svg.append(
      s('line', { x1: x(k), x2: x(k), y1: AXIS - 6, y2: H, class: 'grid' }),
      s('text', { x: x(k), y: AXIS - 9, 'text-anchor': anchor, class: 'axis' }, label),
    );
  });
  const byId = new Map(shards.map((sh) => [sh.ShardId, sh]));
  // Lineage lines first, so the bars cover their ends.
  for (const child of shards) {
    for (const pid of parentsOf(child)) {
      const parent = byId.get(pid);
      if (!parent) continue;
      const lo = [child, parent].map((sh) => BigInt(sh.HashKeyRange.StartingHashKey)).reduce((a, b) => (a > b ? a : b));
      const hi = [child, parent].map((sh) => BigInt(sh.HashKeyRange.EndingHashKey)).reduce((a, b) => (a < b ? a : b));
      const cx = lo <= hi ? (x(lo) + x(hi + 1n)) / 2 : (x(BigInt(child.HashKeyRange.StartingHashKey)) + x(BigInt(parent.HashKeyRange.StartingHashKey))) / 2;
      const y1 = rowY(depth.get(pid)) + ROW;
      const y2 = rowY(depth.get(child.ShardId));
      svg.append(s('path', { d: `M${cx},${y1} L${cx},${y2}`, class: 'lineage' }));
    }
  }
  for (const sh of shards) {
    const start = BigInt(sh.HashKeyRange.StartingHashKey);
    const end = BigInt(sh.HashKeyRange.EndingHashKey);
    const x0 = x(start);
    const w = Math.max(2, x(end + 1n) - x0 - 1);
    const y0 = rowY(depth.get(sh.ShardId));
    const openNow = isOpen(sh);
    const f = share(sh);
    const g = s('g', {
      class: ['shard', openNow ? 'open' : 'closed', sh.ShardId === selected && 'selected'],
      'data-shard-id': sh.ShardId,
      'data-state': openNow ? 'open' : 'closed',
    });
    g.append(
      s('title', {}, `${sh.ShardId} (${openNow ? 'open' : 'closed'}) — ${pct(f)} of the key space\n` +
        `${sh.HashKeyRange.StartingHashKey} … ${sh.HashKeyRange.EndingHashKey}` +
        (parentsOf(sh).length ? `\nparents: ${parentsOf(sh).join(', ')}` : '')),
      s('rect', {
        x: x0,
        y: y0,
        width: w,
        height: ROW,
        rx: 4,
        fill: openNow ? shardColor(sh.ShardId) : 'url(#hatch)',
        'fill-opacity': openNow ? 0.9 : 1,
        stroke: openNow ? 'none' : '#aab1bd',
      }),
    );
    const label = w > 110 ? `${sh.ShardId}  ${pct(f)}` : w > 46 ? `#${shortShard(sh.ShardId)} ${pct(f)}` : w > 16 ? shortShard(sh.ShardId) : '';
    if (label) {
      g.append(s('text', { x: x0 + w / 2, y: y0 + ROW / 2 + 4, 'text-anchor': 'middle', class: openNow ? 'label' : 'label dim' }, label));
    }
    if (onSelect) g.addEventListener('click', () => onSelect(sh.ShardId));
    svg.append(g);
  }
  return h('div', { class: 'shardmap-box' }, svg);
}
