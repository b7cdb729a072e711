"""One request on the wire: transport, HTTP/1.1, SSE, decoders, integrity."""
