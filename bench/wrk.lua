-- wrk script of the benchmark (python -m bench): POST JSON bodies, check every answer, write
-- a JSON summary.
--
-- Environment:
--   BENCH_BODY    the request body; every "@N@" in it becomes a per-request counter, so that
--                 no two prompts are the same (nothing can be answered from a prompt cache)
--   BENCH_EXPECT  a string every 200 answer must contain (e.g. "[DONE]" for a stream); optional
--   BENCH_REJECT  a string no answer may contain (e.g. "error"); optional
--   BENCH_OUT     the file the JSON summary is written to
--   BENCH_AUTHORIZATION  an Authorization header value (e.g. "Bearer sk-..."); optional
--
-- wrk reads each answer to its end (a chunked SSE stream included) before it counts the
-- request, so a stream's latency is the time to its last byte.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local body = os.getenv("BENCH_BODY") or "{}"
   local at = string.find(body, "@N@", 1, true)
   if at then
      pre = string.sub(body, 1, at - 1)
      post = string.sub(body, at + 3)
   else
      pre, post = body, nil
   end
   expect = os.getenv("BENCH_EXPECT") or ""
   reject = os.getenv("BENCH_REJECT") or ""
   headers = { ["Content-Type"] = "application/json" }
   local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
   if authorization ~= "" then headers["Authorization"] = authorization end
   good = 0
   bad = 0
   first_bad = ""
end

function request()
   counter = counter + 1
   local body = pre
   if post then
      body = pre .. tid .. "-" .. counter .. post
   end
   return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
   local ok = status == 200
   if ok and expect ~= "" and not string.find(body, expect, 1, true) then ok = false end
   if ok and reject ~= "" and string.find(body, reject, 1, true) then ok = false end
   if ok then
      good = good + 1
   else
      bad = bad + 1
      if first_bad == "" then
         first_bad = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

local function jstr(s)
   s = string.gsub(s, "\\", "\\\\")
   s = string.gsub(s, "\"", "\\\"")
   s = string.gsub(s, "[%c]", " ")
   return "\"" .. s .. "\""
end

function done(summary, latency, requests)
   local g, b, fb = 0, 0, ""
   for _, t in ipairs(threads) do
      g = g + (t:get("good") or 0)
      b = b + (t:get("bad") or 0)
      if fb == "" then fb = t:get("first_bad") or "" end
   end
   local e = summary.errors
   local parts = {
      "\"requests\":" .. summary.requests,
      "\"duration_us\":" .. summary.duration,
      "\"bytes\":" .. summary.bytes,
      "\"good\":" .. g,
      "\"bad\":" .. b,
      "\"first_bad\":" .. jstr(fb),
      "\"errors\":{\"connect\":" .. e.connect .. ",\"read\":" .. e.read .. ",\"write\":" .. e.write
         .. ",\"status\":" .. e.status .. ",\"timeout\":" .. e.timeout .. "}",
      "\"latency_us\":{\"min\":" .. latency.min .. ",\"mean\":" .. latency.mean
         .. ",\"max\":" .. latency.max .. ",\"stdev\":" .. latency.stdev
         .. ",\"p50\":" .. latency:percentile(50) .. ",\"p90\":" .. latency:percentile(90)
         .. ",\"p99\":" .. latency:percentile(99) .. ",\"p999\":" .. latency:percentile(99.9) .. "}",
   }
   local out = os.getenv("BENCH_OUT")
   local text = "{" .. table.concat(parts, ",") .. "}\n"
   if out and out ~= "" then
      local f = assert(io.open(out, "w"))
      f:write(text)
      f:close()
   else
      io.write(text)
   end
end
