-- wrk script: the reference for the DynamoDB store, measured in the same
-- run: dynalite answering a raw conditional-free UpdateItem (ADD games :1)
-- per request, the cheapest write an aggregator could make. dynalite checks
-- the shape of a SigV4 Authorization header, not the signature.
local table_name = os.getenv("TS_BENCH_TABLE") or "TaTourneyStats"
local players = tonumber(os.getenv("TS_BENCH_PLAYERS") or "1000")

function request()
  local body = '{"TableName":"' .. table_name .. '","Key":{"player":{"S":"raw' ..
    math.random(players) .. '"}},"UpdateExpression":"ADD games :one",' ..
    '"ExpressionAttributeValues":{":one":{"N":"1"}}}'
  return wrk.format("POST", "/", {
    ["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "DynamoDB_20120810.UpdateItem",
    ["X-Amz-Date"] = "20261127T000000Z",
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000",
  }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
