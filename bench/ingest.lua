-- wrk script: POST one stream record per request (what an EventBridge Pipe
-- API destination sends), each with a fresh eventID, spread over
-- TS_BENCH_PLAYERS players. With TS_BENCH_CLOSE=1 every request carries
-- "Connection: close", as the Pipe does.
local players = tonumber(os.getenv("TS_BENCH_PLAYERS") or "1000")
local close = os.getenv("TS_BENCH_CLOSE") == "1"
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  math.randomseed(thread_id * 7919 + os.time())
end

function request()
  counter = counter + 1
  local id = string.format("bench-%d-%d-%d", os.time(), thread_id, counter)
  local player = "p" .. math.random(players)
  local score = string.format("%d.%02d", math.random(0, 99), math.random(0, 99))
  local win = math.random(2) == 1 and "true" or "false"
  local body = '{"eventID":"' .. id .. '","eventName":"INSERT","dynamodb":' ..
    '{"SequenceNumber":"' .. counter .. '","NewImage":{"player":{"S":"' ..
    player .. '"},"score":{"N":"' .. score .. '"},"winner":{"BOOL":' .. win ..
    '}}}}'
  local headers = {["Content-Type"] = "application/json"}
  if close then headers["Connection"] = "close" end
  return wrk.format("POST", "/v1/stream-records", headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
