"""Small SSE servers that are not streamkit: the probe must judge other people's streams fairly.

Each peer serves the same two streams with a different stack (FastAPI's native
`EventSourceResponse`, sse-starlette, a raw ASGI app), run under uvicorn:

    GET  /generic              n events `data: {"seq": i}`, then the server closes (no terminal event)
    POST /v1/chat/completions  n OpenAI chat chunks, then `data: [DONE]`; plain `Cache-Control: no-cache`

Query parameters: n (events, default 10), interval (seconds between events, default 0.05),
pause (seconds of silence after half the events, default 0; no heartbeats during it).
"""
