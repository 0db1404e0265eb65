-- wrk script for the serving benchmarks (driven by serving_wrk.py and serving_hotswap.py).
--
-- Stock wrk is closed-loop; this script makes each connection open-loop at a fixed rate
-- (run wrk with one connection per thread: -t N -c N). Requests are sent on a schedule
-- of fixed slots, and each response's latency is measured from its *scheduled* slot,
-- not from when it was written, so a slow answer that delays the next send is charged
-- to that next request too (the correction wrk2 makes against coordinated omission).
--
-- Arguments after `--`: MODE RATE USERS ITEMS KEY [K]
--   MODE  "recommend": POST /v1/recommendations for a random user id from USERS
--         "events":    POST /v1/events, K "view" events per request with unique ids,
--                      random users from USERS and items from ITEMS
--         "heavy":     POST /v1/recommendations, the heaviest a read key may send: a
--                      random user with a K-item history of random ITEMS, k 500,
--                      explanations on
--         "live":      GET /health/live
--   RATE  requests per second for each connection
--   USERS, ITEMS  files with one id per line
--   KEY   API key
--   K     events per request ("events" only; default 100)
-- done() prints one line "LMREC_RESULT <json>" with every connection's latencies,
-- status counts and, for "recommend", the model versions seen in completion order.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } lmrec_timespec;
int clock_gettime(int clk_id, lmrec_timespec *tp);
]])
local ts = ffi.new("lmrec_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread has its own Lua environment)
local mode, interval, users, items, per_request, headers
local slot = nil
local run_id = 0
local sent = 0
latencies = {}
statuses = {}
versions = {}
flips = 0

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then
      table.insert(out, line)
    end
  end
  return out
end

function init(args)
  mode = args[1]
  interval = 1000 / tonumber(args[2])
  users = read_lines(args[3])
  items = read_lines(args[4])
  per_request = tonumber(args[6] or "100")
  headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = args[5] }
  math.randomseed(thread_id * 7919)
  run_id = os.time()
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function pick(ids)
  return ids[math.random(#ids)]
end

function request()
  sent = sent + 1
  if mode == "events" then
    local parts = {}
    for i = 1, per_request do
      parts[i] = string.format(
        '{"event_id":"w%d-%d-%d-%d","user_id":%s,"item_id":%s,"type":"view"}',
        thread_id, run_id, sent, i, json_string(pick(users)), json_string(pick(items))
      )
    end
    return wrk.format("POST", "/v1/events", headers, '{"events":[' .. table.concat(parts, ",") .. "]}")
  end
  if mode == "live" then
    return wrk.format("GET", "/health/live", headers)
  end
  if mode == "heavy" then
    local parts = {}
    for i = 1, per_request do
      parts[i] = json_string(pick(items))
    end
    local body = '{"user_id":' .. json_string(pick(users)) .. ',"k":500,"history":[' .. table.concat(parts, ",") .. "]}"
    return wrk.format("POST", "/v1/recommendations", headers, body)
  end
  return wrk.format("POST", "/v1/recommendations", headers, '{"user_id":' .. json_string(pick(users)) .. ',"k":10}')
end

function response(status, hdrs, body)
  table.insert(latencies, now_ms() - slot)
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if mode == "recommend" and status == 200 then
    local v = body:match('"model_version":"([^"]*)"')
    if v ~= versions[#versions] then
      -- a version seen before that is not the latest one is a flip back
      for _, old in ipairs(versions) do
        if old == v then
          flips = flips + 1
        end
      end
      table.insert(versions, v)
    end
  end
end

-- wrk calls delay() before every request, the first included; connections start at
-- random offsets within one interval so that they do not all fire together.
function delay()
  if slot == nil then
    slot = now_ms() + math.random() * interval
  else
    slot = slot + interval
  end
  local wait = slot - now_ms()
  if wait <= 0 then
    return 0
  end
  return math.ceil(wait)
end

function done(summary, latency, requests)
  local out = {}
  for i, thread in ipairs(threads) do
    out[i] = {
      latencies = thread:get("latencies"),
      statuses = thread:get("statuses"),
      versions = thread:get("versions"),
      flips = thread:get("flips"),
    }
  end
  local function encode(v)
    local t = type(v)
    if t == "number" then
      return string.format("%.3f", v)
    elseif t == "string" then
      return json_string(v)
    elseif t == "table" then
      if #v > 0 or next(v) == nil then
        local parts = {}
        for i, x in ipairs(v) do
          parts[i] = encode(x)
        end
        return "[" .. table.concat(parts, ",") .. "]"
      end
      local parts = {}
      for k, x in pairs(v) do
        table.insert(parts, json_string(tostring(k)) .. ":" .. encode(x))
      end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    return "null"
  end
  local e = summary.errors
  io.write(
    "LMREC_RESULT "
      .. encode({
        duration_s = summary.duration / 1e6,
        requests = summary.requests,
        socket_errors = e.connect + e.read + e.write + e.timeout,
        wrk_p50_ms = latency:percentile(50) / 1000,
        wrk_p99_ms = latency:percentile(99) / 1000,
        connections = out,
      })
      .. "\n"
  )
end
