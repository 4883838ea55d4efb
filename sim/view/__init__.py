"""``traitlab view``: a recorded or running simulation in the browser (starlette on uvicorn).

:mod:`sim.view.app` serves one static page (``page.html`` with its scripts and style sheet in
``static/``) and a JSON API over a run directory read through
:class:`analysis.live.LiveRun`; :mod:`sim.view.server` runs it on 127.0.0.1, in the
foreground or beside a running simulation.
"""
