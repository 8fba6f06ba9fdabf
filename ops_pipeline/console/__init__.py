"""The ops console: server-rendered pages under `/console` of the API process (Jinja2, plain forms, a little
JavaScript served from the package). Read models live beside the pages' domains; `pages/` are adapters."""
