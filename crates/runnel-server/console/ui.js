// Small DOM helpers. Everything user-controlled (stream names, tags, record
// data) goes in as text nodes or attributes, never as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h('div', {class: 'x', onclick: f}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el, ...children) {
  el.replaceChildren();
  return build(el, {}, children);
}

// ------------------------------------------------------------ formatting

export function fmtNumber(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '–';
  if (ms < 10 && !Number.isInteger(ms)) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${(ms / 60000).toFixed(1)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

export function fmtHours(hours) {
  if (hours % 24 === 0) return `${hours} h (${hours / 24} d)`;
  return `${hours} h`;
}

/** Epoch seconds (Kinesis JSON timestamps) → local date and time. */
export function fmtTime(epochSeconds, withDate = false) {
  if (epochSeconds === undefined || epochSeconds === null) return '–';
  const d = new Date(Number(epochSeconds) * 1000);
  const time = d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  return withDate ? `${d.toLocaleDateString()} ${time}` : time;
}

/** "shardId-000000000007" → "7" for labels where space is short. */
export function shortShard(id) {
  const m = /(\d+)$/.exec(id || '');
  return m ? String(Number(m[1])) : id;
}

export function statusBadge(status) {
  const cls = { ACTIVE: 'ok', CREATING: 'busy', UPDATING: 'busy', DELETING: 'warn' }[status] || 'muted';
  return h('span', { class: `badge ${cls}`, 'data-status': status }, status);
}

export function modeOf(summary) {
  return (summary.StreamModeDetails && summary.StreamModeDetails.StreamMode) || 'PROVISIONED';
}

// ------------------------------------------------------------ feedback

let toastTimer = 0;

/** A short message at the bottom; errors stay until the next message. */
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  clearTimeout(toastTimer);
  el.className = `toast show ${kind}`;
  el.textContent = message;
  toastTimer = setTimeout(() => el.classList.remove('show'), kind === 'error' ? 12000 : 4000);
}

export function errorText(e) {
  return e && e.type ? `${e.type}: ${e.message}` : String((e && e.message) || e);
}

/** Runs an action from a button: disables it meanwhile, reports the outcome. */
export async function act(button, fn, okMessage) {
  if (button) button.disabled = true;
  try {
    const r = await fn();
    if (okMessage) toast(typeof okMessage === 'function' ? okMessage(r) : okMessage, 'ok');
    return r;
  } catch (e) {
    toast(errorText(e), 'error');
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/**
 * A periodic refresh that stops when the view goes away and never overlaps
 * itself. Returns stop(); stop.now() refreshes at once (after an action).
 */
export function every(ms, fn) {
  let stopped = false;
  let timer = 0;
  let running = null;
  let again = false;
  const tick = async () => {
    if (stopped) return;
    if (running) {
      again = true; // state changed during this refresh: refresh once more after it
      return running;
    }
    clearTimeout(timer);
    running = (async () => {
      try {
        await fn();
      } catch (e) {
        toast(errorText(e), 'error');
      }
    })();
    await running;
    running = null;
    if (!stopped) timer = setTimeout(tick, again ? 0 : ms);
    again = false;
  };
  tick();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  stop.now = tick;
  return stop;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
