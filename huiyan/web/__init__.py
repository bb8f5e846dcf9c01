"""Browser clients (web/): the citizen video-call page, the agent console, the supervisor wall and the meeting &
dispatch console, built by setup, served by the API.

- build.py   `huiyan setup` step: npm packages from web/package-lock.json, esbuild bundles, cached by content
- serve.py   GET /call, /agent, /wall, /rooms and /web/... from the built directory (public: they are only static files)
- calls.py   tickets of the citizen page: who is calling and for what, and the call's own queue position
"""
