// The console's only way to the server: the public AWS APIs on this origin.
//   Kinesis     POST /  X-Amz-Target: Kinesis_20131202.<Op>                  application/x-amz-json-1.1
//   CloudWatch  POST /  X-Amz-Target: GraniteServiceVersion20100801.<Op>     application/x-amz-json-1.0
// Nothing here is runnel-specific, so the same calls work against any
// Kinesis-compatible endpoint that allows them from a browser.

export class AwsError extends Error {
  constructor(type, message, status) {
    super(message || type);
    this.type = type;
    this.status = status;
  }
}

// Every AWS endpoint refuses a request without a signature
// (MissingAuthenticationTokenException), and so does runnel. With
// auth = "open" runnel checks that a signature is complete but does not
// verify it, so the console, which holds no credentials, sends a complete
// SigV4 header for the placeholder key "runnel-console" with a zero
// signature. With auth = "enforced" this is refused like any bad signature.
function placeholderSignature(target) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const service = target.startsWith('Kinesis_') ? 'kinesis' : 'monitoring';
  return {
    'X-Amz-Date': amzDate,
    Authorization: `AWS4-HMAC-SHA256 Credential=runnel-console/${amzDate.slice(0, 8)}/us-east-1/${service}/aws4_request, `
      + `SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`,
  };
}

async function call(target, contentType, body) {
  const headers = {
    'Content-Type': contentType,
    'X-Amz-Target': target,
  };
  Object.assign(headers, placeholderSignature(target));
  let resp;
  try {
    resp = await fetch('/', { method: 'POST', headers, body: JSON.stringify(body || {}) });
  } catch (e) {
    throw new AwsError('NetworkError', `The server did not answer: ${e.message}`, 0);
  }
  const text = await resp.text();
  let data = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new AwsError('SerializationException', `Unreadable response (${resp.status}).`, resp.status);
    }
  }
  if (!resp.ok) {
    const type = String(data.__type || resp.headers.get('x-amzn-ErrorType') || `HTTP ${resp.status}`)
      .split('#').pop().split(':')[0];
    throw new AwsError(type, data.message || data.Message || type, resp.status);
  }
  return data;
}

/** One Kinesis Data Streams operation (JSON 1.1). */
export function kinesis(op, body) {
  return call(`Kinesis_20131202.${op}`, 'application/x-amz-json-1.1', body);
}

/** One CloudWatch operation (JSON 1.0). */
export function cloudwatch(op, body) {
  return call(`GraniteServiceVersion20100801.${op}`, 'application/x-amz-json-1.0', body);
}

/** Every page of a paginated Kinesis list call. */
export async function listAll(op, first, key, pageMax = 20) {
  const out = [];
  let r = await kinesis(op, first);
  out.push(...(r[key] || []));
  for (let i = 1; i < pageMax && r.NextToken; i++) {
    r = await kinesis(op, { NextToken: r.NextToken, ...(op === 'ListShards' ? {} : first) });
    out.push(...(r[key] || []));
  }
  return out;
}

// ------------------------------------------------------------ hash keys

export const HASH_KEY_SPACE = 1n << 128n;

/** The midpoint SplitShard takes as NewStartingHashKey: the first key of the upper half. */
export function midpoint(range) {
  const start = BigInt(range.StartingHashKey);
  const end = BigInt(range.EndingHashKey);
  return start + (end - start + 1n) / 2n;
}

/** The fraction [0, 1] of the key space a hash key (or key count) is at. */
export function fraction(key) {
  return Number((BigInt(key) * 1000000n) / HASH_KEY_SPACE) / 1e6;
}

// ------------------------------------------------------------ record data

export function utf8ToBase64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * Decodes a record's base64 Data: {kind: 'json'|'text'|'binary', text, bytes}.
 * JSON is pretty-printed; bytes that are not UTF-8 are shown as hex.
 */
export function decodeData(b64) {
  const bin = atob(b64 || '');
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const hex = Array.from(bytes.slice(0, 512), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return { kind: 'binary', text: hex + (bytes.length > 512 ? ' …' : ''), bytes: bytes.length };
  }
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return { kind: 'json', text: JSON.stringify(JSON.parse(t), null, 2), bytes: bytes.length };
    } catch {
      /* not JSON after all */
    }
  }
  return { kind: 'text', text, bytes: bytes.length };
}

// ------------------------------------------------------------ metrics

/**
 * Per-minute values of several AWS/Kinesis metrics over the last `minutes`,
 * in one GetMetricData call. `queries`: [{id, metric, dims: {Name: Value}, stat}].
 * Returns {from, to, series: {id: [[epochSeconds, value], ...] ascending}}.
 */
export async function metricSeries(queries, minutes = 60) {
  const now = Math.floor(Date.now() / 1000);
  const to = (Math.floor(now / 60) + 1) * 60; // the end of the current minute
  const from = to - minutes * 60;
  const series = {};
  if (!queries.length) return { from, to, series };
  const r = await cloudwatch('GetMetricData', {
    StartTime: from,
    EndTime: to,
    MetricDataQueries: queries.map((q) => ({
      Id: q.id,
      MetricStat: {
        Metric: {
          Namespace: 'AWS/Kinesis',
          MetricName: q.metric,
          Dimensions: Object.entries(q.dims).map(([Name, Value]) => ({ Name, Value })),
        },
        Period: 60,
        Stat: q.stat || 'Sum',
      },
    })),
  });
  for (const res of r.MetricDataResults || []) {
    const pts = (res.Timestamps || []).map((t, i) => [Number(t), Number(res.Values[i])]);
    pts.sort((a, b) => a[0] - b[0]);
    series[res.Id] = pts;
  }
  return { from, to, series };
}
