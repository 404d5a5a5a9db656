-- wrk script for bench/load.py (run by it, one wrk process per endpoint; see that file):
--
--   wrk -t1 -c50 -d60s --timeout 10s -s bench/wrk_load.lua http://127.0.0.1:PORT -- \
--       registry var/bench-load/wrk-data.lua 50 SEED
--
-- Arguments after `--`: the endpoint (registry, statement or declaration), the Lua data file
-- bench/load.py writes (ISBNs, paths, session cookie, API key), the number of connections and a
-- random seed. Each connection is one client asking once a second, as locust's
-- `constant_throughput(1)`: wrk waits `delay()` ms after each response (and before the first
-- request); the delays keep the endpoint's requests at `connections` a second, evenly spaced
-- (see `delay`), the first ones spread over the first second. Every response is checked as the
-- locustfile does (status 200 and the expected body); `done` prints one `WRK_JSON {...}` line
-- with the counts and the latency percentiles (wrk's own, measured per request in C).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } blanket_timespec;
int clock_gettime(int clk_id, blanket_timespec *tp);
]])
local clock = ffi.new("blanket_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local kind, data, connections
local json_headers = { ["Content-Type"] = "application/json" }
local next_slot, interval = nil, nil
failures, first_failure = 0, nil -- read by done() through thread:get

function init(args)
  kind, data, connections = args[1], dofile(args[2]), tonumber(args[3])
  math.randomseed(tonumber(args[4]) or 7)
  if kind ~= "registry" and kind ~= "statement" and kind ~= "declaration" then
    error("unknown endpoint " .. tostring(kind))
  end
end

-- 60 known ISBNs (distinct, from the catalogue) and 40 made-up ones, as the locustfile.
local function registry_body()
  local isbns, items = data.isbns, {}
  local n = #isbns
  for i = 1, 60 do
    local j = math.random(i, n)
    isbns[i], isbns[j] = isbns[j], isbns[i]
    items[i] = '{"scheme":"isbn","identifier":"' .. isbns[i] .. '"}'
  end
  for i = 61, 100 do
    items[i] = string.format('{"scheme":"isbn","identifier":"97800000%05d"}', math.random(0, 99999))
  end
  return '{"items":[' .. table.concat(items, ",") .. "]}"
end

function request()
  if kind == "registry" then
    return wrk.format("POST", "/api/v1/registry/check", json_headers, registry_body())
  elseif kind == "statement" then
    return wrk.format("GET", data.statement_path, { Cookie = "sessionid=" .. data.holder_session })
  end
  return wrk.format("GET", data.declaration_path, { Authorization = data.licensee_key })
end

function response(status, headers, body)
  local ok = status == 200
  if ok and kind == "registry" then
    local _, results = body:gsub('"status":', "")
    ok = results == 100
  elseif ok and kind == "statement" then
    ok = body:find(data.holder_code, 1, true) ~= nil
  elseif ok then
    ok = body:find('"status":"accepted"', 1, true) ~= nil
  end
  if not ok then
    failures = failures + 1
    first_failure = first_failure or (status .. ": " .. body:sub(1, 200))
  end
end

-- Called before each request of a connection (its first included): the connections share a
-- schedule of `connections` evenly spaced requests a second, and each takes the next free
-- slot. A slot already past is not made up (as constant_throughput): the request goes now.
function delay()
  local now = now_ms()
  if next_slot == nil then
    interval, next_slot = 1000 / connections, now
  end
  local slot = math.max(next_slot, now)
  next_slot = slot + interval
  return slot - now
end

function done(summary, latency, requests)
  local failed, example = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("failures") or 0)
    example = thread:get("first_failure") or example
  end
  local errors = summary.errors
  io.write(
    string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "failures": %d, "connect": %d, "read": %d, '
        .. '"write": %d, "status": %d, "timeout": %d, "p50": %.1f, "p95": %.1f, "p99": %.1f, '
        .. '"max": %.1f, "mean": %.1f, "example": "%s"}\n',
      summary.requests,
      summary.duration,
      failed,
      errors.connect,
      errors.read,
      errors.write,
      errors.status,
      errors.timeout,
      latency:percentile(50) / 1000,
      latency:percentile(95) / 1000,
      latency:percentile(99) / 1000,
      latency.max / 1000,
      latency.mean / 1000,
      (example:gsub('[%c"\\]', " "))
    )
  )
end
