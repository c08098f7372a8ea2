-- wrk script: POST {"Records":[...]} batches of TS_BENCH_BATCH records (a
-- Lambda forwarder's shape) with fresh eventIDs over TS_BENCH_PLAYERS.
local players = tonumber(os.getenv("TS_BENCH_PLAYERS") or "1000")
local size = tonumber(os.getenv("TS_BENCH_BATCH") or "100")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  local parts = {}
  for i = 1, size do
    counter = counter + 1
    parts[i] = '{"eventID":"b-' .. os.time() .. '-' .. thread_id .. '-' ..
      counter .. '","eventName":"INSERT","dynamodb":{"NewImage":' ..
      '{"player":{"S":"p' .. math.random(players) .. '"},"score":{"N":"' ..
      math.random(0, 100) .. '"},"winner":{"BOOL":true}}}}'
  end
  return wrk.format("POST", "/v1/stream-records",
    {["Content-Type"] = "application/json"},
    '{"Records":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
