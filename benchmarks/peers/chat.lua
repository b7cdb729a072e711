-- wrk script: the same non-stream chat completion every peer sends (see harness_peers.py).
-- The stub derives its answer from the marker, so every request gets a full, valid reply.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-lg-peer"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,"stream":false,' ..
  '"messages":[{"role":"user","content":"Say something. [loadgate:00000000000000ab]"}]}'
