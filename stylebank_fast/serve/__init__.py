"""A local web app and HTTP API for stylization (`python -m stylebank_fast.serve`), on a server
that batches concurrent requests, whatever their styles, into one forward of the network.

Needs the `[serve]` extra (Starlette, uvicorn, python-multipart); only `app` and `server`
import it, so the batcher and the request parsing work without it. docs/serve.md has the API.
"""
