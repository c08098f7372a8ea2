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
  local headers = {["Content-Type"] = "application/json"}
  if close then headers["Connection"] = "close" end
  return wrk.format("POST", "/v1/stream-records", headers, body)
end

function response(status, headers, body)
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
end
