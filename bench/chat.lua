-- wrk script: POST an OpenAI chat completion (non-streaming).
-- env: BENCH_MODEL (the agent slug, or any model name for the stub), BENCH_KEY (API key; optional)
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
  wrk.headers["authorization"] = "Bearer " .. key
end
wrk.body = '{"model":"' .. (os.getenv("BENCH_MODEL") or "fake-model") ..
  '","messages":[{"role":"user","content":"Hello, what are your opening hours?"}]}'

-- Count non-2xx answers so a run full of errors cannot pass for a fast one.
local errors = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n") end
  end
end
