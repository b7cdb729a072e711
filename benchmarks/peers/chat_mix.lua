-- wrk script: the phase2-gate mix (chat, half the requests streamed, 16 tokens), for
-- benchmarks/harness_cost.py's peer. wrk reads every streamed segment as it comes (one
-- epoll wake-up and read per token, as loadgate does) but decodes nothing: its CPU per
-- request is what any client pays on this machine for the same sends and reads.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-lg-peer"
local function body(stream)
  return '{"model":"gpt-4o-mini","max_tokens":16,"stream":' .. stream .. ',' ..
    '"messages":[{"role":"user","content":"Say something. [loadgate:00000000000000ab]"}]}'
end
local bodies = { body("false"), body("true") }
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[n % 2 + 1])
end
