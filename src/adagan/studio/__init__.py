"""`adagan studio`: a local web page to watch training runs and play with a generator.

`runs` reads run directories (safely, while training writes them), `render` draws pictures with the
library functions of `adagan.inference` on one worker thread, `app` is the Starlette application, and
`static/` holds the page (plain HTML, CSS and JavaScript; no build step, nothing from a CDN).
Needs the `studio` extra: `pip install 'adagan[studio]'` (Starlette and uvicorn).
"""
