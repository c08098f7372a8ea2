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

local function record(n)
  local player = "p" .. ((n * 7919) % players + 1)
  local score = string.format("%d.%02d", (n * 37) % 100, (n * 13) % 100)
  local win = (n % 3 ~= 0) and "true" or "false"
  return '{"eventID":"' .. run .. '-' .. n .. '","eventName":"INSERT",' ..
    '"eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{' ..
    '"ApproximateCreationDateTime":' .. (t0 + n % 3600) .. ',' ..
    '"Keys":{"gameId":{"S":"g' .. n .. '"}},"NewImage":{"gameId":{"S":"g' ..
    n .. '"},"player":{"S":"' .. player .. '"},"score":{"N":"' .. score ..
    '"},"winner":{"BOOL":' .. win .. '}},"SequenceNumber":"' .. n ..
    '","SizeBytes":120,"StreamViewType":"NEW_AND_OLD_IMAGES"}}'
end

function request()
  local body
  if size == 1 then
    counter = counter + 1
    body = record(counter)
  else
    local parts = {}
    for i = 1, size do
      counter = counter + 1
      parts[i] = record(counter)
    end
    body = '{"Records":[' .. table.concat(parts, ",") .. ']}'
  end
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
