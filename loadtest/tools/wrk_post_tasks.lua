-- wrk script: POST /tasks with {"title": "..."}, rotating over bearer tokens (the member rate
-- limit is per user: N tokens allow N times the per-user limit).
--   taskstream loadtest token --count 8 > /tmp/tokens
--   TOKENS_FILE=/tmp/tokens wrk -t2 -c64 -d30s --latency -s loadtest/tools/wrk_post_tasks.lua \
--       http://127.0.0.1:8000/tasks
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE") or "tokens.txt") do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
end

function request()
  next_token = next_token % #tokens + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[next_token],
  }
  return wrk.format("POST", nil, headers, '{"title": "from wrk"}')
end
