-- wrk script: PutRecords with RECORDS records of BYTES bytes each (raw JSON,
-- no signature: runnel's open mode, kinesalite and ferrokinesis accept it).
-- Env: STREAM (default runnel-bench), RECORDS (1), BYTES (100).
local stream = os.getenv("STREAM") or "runnel-bench"
local records = tonumber(os.getenv("RECORDS") or "1")
local bytes = tonumber(os.getenv("BYTES") or "100")

-- base64 of `bytes` bytes of 'x' (x = 0x78): "eHh4" per 3 bytes.
local function b64x(n)
  local full = math.floor(n / 3)
  local s = string.rep("eHh4", full)
  local rest = n % 3
  if rest == 1 then s = s .. "eA==" elseif rest == 2 then s = s .. "eHg=" end
  return s
end
local data = b64x(bytes)

local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local function body()
  local parts = {}
  for i = 1, records do
    counter = counter + 1
    parts[i] = '{"Data":"' .. data .. '","PartitionKey":"k' .. thread_id .. '-' .. counter .. '"}'
  end
  return '{"StreamName":"' .. stream .. '","Records":[' .. table.concat(parts, ",") .. ']}'
end

-- A few distinct bodies per thread, reused, so the client's own work stays small.
local bodies = {}
function init(args)
  for i = 1, 64 do bodies[i] = body() end
end

local n = 0
function request()
  n = n + 1
  return wrk.format("POST", "/", {
    ["Content-Type"] = "application/x-amz-json-1.1",
    ["X-Amz-Target"] = "Kinesis_20131202.PutRecords",
    ["X-Amz-Date"] = "20260101T000000Z",
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=any/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
  }, bodies[(n % 64) + 1])
end

-- Responses that are not 200, and 200s that report failed records
-- (throttling): counted per thread, summed in done().
failed = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"FailedRecordCount":0[,}]') then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + (t:get("failed") or 0) end
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d failed=%d records_per_request=%d record_bytes=%d errors_connect=%d errors_read=%d errors_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    failed_total, records, bytes, summary.errors.connect, summary.errors.read, summary.errors.timeout))
end
