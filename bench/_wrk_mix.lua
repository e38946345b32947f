-- wrk script for web_bench.py: a fixed mix of requests, a bounded number of them, a JSON summary.
--
--   WRK_MIX=mix.tsv WRK_TOTAL=20000 WRK_THREADS=2 wrk -t2 -c32 -d600s -s _wrk_mix.lua http://127.0.0.1:PORT
--
-- WRK_MIX: one request per line, "METHOD<TAB>PATH<TAB>BODY<TAB>HEADER" (BODY may be empty; a non-empty one is
-- sent as application/json; HEADER, optional, is one "name: value"). Each thread cycles through the mix from its own offset and stops after its share of
-- WRK_TOTAL responses, so the run is bounded by requests, not time. A thread that stops prints
-- "WRK_THREAD {...}" with its first send and last response on CLOCK_MONOTONIC (s); wrk itself runs
-- until -d, so the caller sends SIGINT once every thread has stopped, and done() prints one line,
-- "WRK_JSON {...}", with the counts and the latency percentiles (µs).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_mix_timespec;
int clock_gettime(int clock_id, wrk_mix_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("wrk_mix_timespec")

local function monotonic()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  requests = {}
  for line in io.lines(os.getenv("WRK_MIX")) do
    local method, path, body, header = line:match("^([^\t]+)\t([^\t]+)\t?([^\t]*)\t?(.*)$")
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    local name, value = header:match("^([^:]+):%s*(.*)$")
    if name then
      headers[name] = value
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
  local threads = tonumber(os.getenv("WRK_THREADS"))
  limit = math.ceil(tonumber(os.getenv("WRK_TOTAL")) / threads)
  next_request = (thread_index * 7) % #requests
  responses = 0
  first_send = nil
end

function request()
  first_send = first_send or monotonic()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body)
  responses = responses + 1
  if responses == limit then
    io.stdout:write(string.format('WRK_THREAD {"thread": %d, "responses": %d, "first_send": %.6f, "last_response": %.6f}\n',
      thread_index, responses, first_send, monotonic()))
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local percentiles = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    percentiles[#percentiles + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "max": %d, "mean": %.1f, "stdev": %.1f, %s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(percentiles, ", ")))
end
