-- wrk script: GET /v1/leaderboard, cycling through the four orders and
-- the limits 10, 100 and 1000 (every answer checked for 200 by wrk).
local orders = {"wins", "win_percent", "avg_score", "games"}
local limits = {10, 100, 1000}
local i = 0

function request()
  i = i + 1
  return wrk.format("GET", "/v1/leaderboard?by=" .. orders[i % 4 + 1] ..
    "&limit=" .. limits[i % 3 + 1])
end
