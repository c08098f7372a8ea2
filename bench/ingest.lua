-- wrk script: POST stream records with fresh eventIDs, TS_BENCH_BATCH per
-- request (1: what an EventBridge Pipe API destination sends; 100: a Lambda
-- forwarder's shape), spread over TS_BENCH_PLAYERS players; with
-- TS_BENCH_CLOSE=1 every request carries "Connection: close", as a Pipe does.
--
-- Record n (1, 2, ...) is a function of n and TS_BENCH_RUN alone, the same
-- function as record() in bench/totals.mjs, so that totals.mjs can send
-- every record again after the run (as a Pipe resends what was not
-- acknowledged) and then require each player's games to be exactly the
-- records generated for it. done() writes how many were generated to
-- TS_BENCH_COUNT_FILE.
--
-- Latency is measured here, per request: wrk's own distribution is a
-- sample, the same number of values drawn from every interval of some
-- milliseconds whatever the requests in it, so an interval with one slow
-- answer weighs as much as one with hundreds of fast ones (one sender on a
-- store of 3 million pairs: wrk said p99 48-76 ms, the server's histogram
-- had 99.9% of answers under 5 ms). Each request carries an X-Request-Id,
-- which the service echoes; the answer's time minus the request's is its
-- latency, and done() prints one line:
--   Per-request latency: p50 <us> us, p99 <us> us, max <us> us (<n> answers)
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1 -- Linux
local tsbuf = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, tsbuf)
  return tonumber(tsbuf.tv_sec) * 1e6 + tonumber(tsbuf.tv_nsec) / 1e3
end
local sent, started = 0, {}
lats, lat_n = {}, 0 -- globals: done() reads lats with thread:get()
local players = tonumber(os.getenv("TS_BENCH_PLAYERS") or "1000")
local size = tonumber(os.getenv("TS_BENCH_BATCH") or "1")
local close = os.getenv("TS_BENCH_CLOSE") == "1"
local run = os.getenv("TS_BENCH_RUN") or "r"
local t0 = tonumber(os.getenv("TS_BENCH_T0") or "1764000000")
local count_file = os.getenv("TS_BENCH_COUNT_FILE")
counter = 0 -- global: done() reads it with thread:get()
local threads = {}

function setup(thread)
  -- One thread only (wrk -t1): record numbers are this thread's counter.
  table.insert(threads, thread)
end

-- The constant text of a record, cut where it varies with n. Every varying
-- part but n itself repeats with a short period (the score with n % 100, the
-- winner with n % 3, the creation time with n % 3600, the player with
-- n % players), so it is built once here. The generator is this wrk
-- thread's own CPU, and with one sender it runs in series with the server:
-- building each record with string.format and eleven concatenations cost
-- about 70 us a batch of 100 on this machine, a tenth of a batch's round
-- trip.
local head = '{"eventID":"' .. run .. '-'
local after_id, after_player, after_score, after_win = {}, {}, {}, {}
for k = 0, 3599 do
  after_id[k] = '","eventName":"INSERT","eventSource":"aws:dynamodb",' ..
    '"awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":' ..
    (t0 + k) .. ',"Keys":{"gameId":{"S":"g'
end
for k = 0, players - 1 do
  -- (n * 7919) % players depends on n % players only.
  after_player[k] = '"},"player":{"S":"p' .. ((k * 7919) % players + 1)
end
for k = 0, 99 do
  after_score[k] = '"},"score":{"N":"' ..
    string.format("%d.%02d", (k * 37) % 100, (k * 13) % 100) ..
    '"},"winner":{"BOOL":'
end
for k = 0, 2 do
  after_win[k] = ((k ~= 0) and "true" or "false") .. '}},"SequenceNumber":"'
end
local image = '"}},"NewImage":{"gameId":{"S":"g'
local tail = '","SizeBytes":120,"StreamViewType":"NEW_AND_OLD_IMAGES"}}'
local parts = {}

-- Appends record n's pieces to parts from index i; returns the next index.
local function record(n, i)
  local s = tostring(n)
  parts[i], parts[i + 1], parts[i + 2], parts[i + 3] = head, s, after_id[n % 3600], s
  parts[i + 4], parts[i + 5], parts[i + 6] = image, s, after_player[n % players]
  parts[i + 7], parts[i + 8], parts[i + 9] = after_score[n % 100], after_win[n % 3], s
  parts[i + 10] = tail
  return i + 11
end

function request()
  local i = 1
  if size > 1 then
    parts[1] = '{"Records":['
    i = 2
  end
  for k = 1, size do
    if k > 1 then
      parts[i] = ","
      i = i + 1
    end
    counter = counter + 1
    i = record(counter, i)
  end
  if size > 1 then
    parts[i] = ']}'
    i = i + 1
  end
  local body = table.concat(parts, "", 1, i - 1)
  sent = sent + 1
  local headers = {["Content-Type"] = "application/json",
                   ["X-Request-Id"] = "w" .. sent}
  if close then headers["Connection"] = "close" end
  local req = wrk.format("POST", "/v1/stream-records", headers, body)
  started[sent] = now_us() -- wrk writes it as soon as this returns
  return req
end

function response(status, headers, body)
  local done_at = now_us()
  local id = headers["X-Request-Id"]
  local k = id and tonumber(id:sub(2))
  local t = k and started[k]
  if t then
    started[k] = nil
    lat_n = lat_n + 1
    lats[lat_n] = done_at - t
  end
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end

function done(summary, latency, requests)
  if count_file then
    local f = assert(io.open(count_file, "w"))
    f:write(threads[1]:get("counter"), "\n")
    f:close()
  end
  local l = threads[1]:get("lats")
  local n = #l
  if n > 0 then
    table.sort(l)
    local function pct(p) return l[math.max(1, math.ceil(p / 100 * n))] end
    io.write(string.format(
      "Per-request latency: p50 %.0f us, p99 %.0f us, max %.0f us (%d answers)\n",
      pct(50), pct(99), l[n], n))
  end
end
