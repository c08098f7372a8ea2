-- wrk script for bench/ddb_calls.sh: one kind of DynamoDB call per run
-- (TS_BENCH_CALL), shaped as the store sends it (store/dynamodb.c), so that
-- dynalite's own time for each can be set against a GetItem's:
--   put           PutItem of a player's item (a fresh key each request)
--   put_capacity  the same with ReturnConsumedCapacity=TOTAL, as the store
--                 sends on every call (the cost metrics)
--   put_new       the same conditioned on attribute_not_exists(player): the
--                 store's write of a player it has not seen
--   put_guessed   one item written again and again, each write conditioned
--                 on the five attributes of the write before it: the store's
--                 write of a player it wrote last (store/guess.h); needs one
--                 connection
--   put_new_expected, put_guessed_expected
--                 put_new and put_guessed with the same conditions in the
--                 legacy `Expected` form instead of a ConditionExpression:
--                 what dynalite's expression parser costs (the store does
--                 not send this form)
-- dynalite checks the shape of a SigV4 Authorization header, not the
-- signature.
local table_name = os.getenv("TS_BENCH_TABLE") or "TaTourneyStats"
local call = os.getenv("TS_BENCH_CALL") or "put"
local n = 0
local written = 0 -- put_guessed*: writes answered 200; the next one is +1

local function stamp(i)
  return string.format("2026-12-06T%02d:%02d:%02dZ", math.floor(i / 3600) % 24,
    math.floor(i / 60) % 60, i % 60)
end

local function item(key, i)
  return '{"player":{"S":"' .. key .. '"},"games":{"N":"' .. i ..
    '"},"wins":{"N":"' .. i .. '"},"total_score":{"N":"' .. i ..
    '.5"},"avg_score":{"N":"1"},"win_percent":{"S":"100.00%"},' ..
    '"updated_at":{"S":"' .. stamp(i) .. '"},"version":{"N":"' .. i ..
    '"},"write_id":{"S":"1fee555d9455095d-' .. i .. '"},' ..
    '"recent":{"B":"qE9QuRbzBizhcDNpaSSC5NEig4qkxxKG4b+XWmkkhsyg7544CJ+vdGUZUsRpJIq0"}}'
end

-- The write after the last one answered 200 (the first: unconditioned),
-- conditioned by cond(p) on the item as write p left it.
local function guessed(cond)
  local p = written
  local body = '{"TableName":"' .. table_name .. '","ReturnConsumedCapacity":"TOTAL",' ..
    '"Item":' .. item("guessed", p + 1)
  if p > 0 then
    body = body .. ',' .. cond(p)
  end
  return body .. '}'
end

function request()
  n = n + 1
  local t = '{"TableName":"' .. table_name .. '",'
  local body
  if call == "put" then
    body = t .. '"Item":' .. item("c" .. n, 1) .. '}'
  elseif call == "put_capacity" then
    body = t .. '"ReturnConsumedCapacity":"TOTAL","Item":' .. item("c" .. n, 1) .. '}'
  elseif call == "put_new" then
    body = t .. '"ReturnConsumedCapacity":"TOTAL","Item":' .. item("n" .. n, 1) ..
      ',"ConditionExpression":"attribute_not_exists(#p)",' ..
      '"ExpressionAttributeNames":{"#p":"player"}}'
  elseif call == "put_guessed" then
    body = guessed(function(p)
      return '"ConditionExpression":"#v = :v AND #u = :u AND #g = :g AND #w = :w AND #t = :t",' ..
        '"ExpressionAttributeNames":{"#v":"version","#u":"updated_at","#g":"games",' ..
        '"#w":"wins","#t":"total_score"},"ExpressionAttributeValues":{":v":{"N":"' .. p ..
        '"},":u":{"S":"' .. stamp(p) .. '"},":g":{"N":"' .. p .. '"},":w":{"N":"' .. p ..
        '"},":t":{"N":"' .. p .. '.5"}}'
    end)
  elseif call == "put_new_expected" then
    body = t .. '"ReturnConsumedCapacity":"TOTAL","Item":' .. item("n" .. n, 1) ..
      ',"Expected":{"player":{"Exists":false}}}'
  elseif call == "put_guessed_expected" then
    body = guessed(function(p)
      return '"Expected":{"version":{"Value":{"N":"' .. p .. '"}},' ..
        '"updated_at":{"Value":{"S":"' .. stamp(p) .. '"}},' ..
        '"games":{"Value":{"N":"' .. p .. '"}},"wins":{"Value":{"N":"' .. p .. '"}},' ..
        '"total_score":{"Value":{"N":"' .. p .. '.5"}}}'
    end)
  else
    error("unknown TS_BENCH_CALL " .. call)
  end
  return wrk.format("POST", "/", {
    ["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "DynamoDB_20120810.PutItem",
    ["X-Amz-Date"] = "20261127T000000Z",
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000",
  }, body)
end

function response(status, headers, body)
  if status == 200 then
    written = written + 1
  else
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
