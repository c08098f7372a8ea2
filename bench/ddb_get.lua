-- wrk script: the read reference for the DynamoDB store, measured in the
-- same run: dynalite answering a GetItem of one of the items bench/ddb_raw.lua
-- wrote (run it first), a consistent read as the store makes. dynalite
-- checks the shape of a SigV4 Authorization header, not the signature.
local table_name = os.getenv("TS_BENCH_TABLE") or "TaTourneyStats"
local players = tonumber(os.getenv("TS_BENCH_PLAYERS") or "1000")

function request()
  local body = '{"TableName":"' .. table_name .. '","Key":{"player":{"S":"raw' ..
    math.random(players) .. '"}},"ConsistentRead":true}'
  return wrk.format("POST", "/", {
    ["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "DynamoDB_20120810.GetItem",
    ["X-Amz-Date"] = "20261127T000000Z",
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000",
  }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
