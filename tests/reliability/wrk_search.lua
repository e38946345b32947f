-- wrk script of test_web_under_load.py: a fixed mix of searches for -d seconds, every answer's correlation id kept.
--
--   WRK_MIX=mix.tsv WRK_IDS=ids.txt WRK_LATENCY=latency.txt wrk -t2 -c64 -d10s --timeout 2s -s wrk_search.lua http://127.0.0.1:PORT
--
-- WRK_MIX: one request per line, "METHOD<TAB>PATH<TAB>BODY<TAB>HEADER" (bench/_wrk_mix.lua's format; a
-- non-empty BODY is sent as application/json, HEADER is one "name: value"). Each thread cycles through the
-- mix from its own offset. Each response's status is counted and its x-correlation-id kept; done() writes
-- the ids to WRK_IDS, one a line, wrk's latency histogram to WRK_LATENCY ("µs count" a line, to merge
-- runs), and prints one line, "WRK_JSON {...}": wrk's counts, errors and latency
-- percentiles (µs), with the responses the script saw, the non-2xx among them and those without an id.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
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
  next_request = (thread_index * 7) % #requests
  responses = 0
  non_2xx = 0
  without_id = 0
  ids = {}
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
  local id = headers["x-correlation-id"]
  if id then
    ids[#ids + 1] = id
  else
    without_id = without_id + 1
  end
end

function done(summary, latency, requests)
  local seen, bad, missing = 0, 0, 0
  local out = assert(io.open(os.getenv("WRK_IDS"), "w"))
  for _, thread in ipairs(threads) do
    seen = seen + thread:get("responses")
    bad = bad + thread:get("non_2xx")
    missing = missing + thread:get("without_id")
    local thread_ids = thread:get("ids")
    if #thread_ids > 0 then
      out:write(table.concat(thread_ids, "\n"), "\n")
    end
  end
  out:close()
  local histogram = assert(io.open(os.getenv("WRK_LATENCY"), "w"))
  for i = 1, #latency do
    histogram:write(string.format("%d %d\n", latency(i)))
  end
  histogram:close()
  local e = summary.errors
  local percentiles = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    percentiles[#percentiles + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "responses": %d, "non_2xx": %d, "without_id": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "max": %d, "mean": %.1f, "stdev": %.1f, %s}}\n',
    summary.requests, summary.duration, seen, bad, missing,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(percentiles, ", ")))
end
