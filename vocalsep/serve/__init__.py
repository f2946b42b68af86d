"""`vocalsep serve`: a local karaoke page and the JSON API it uses (`app`), over a bounded
queue of separation jobs run in worker processes (`jobs`). Needs the `serve` extra."""
