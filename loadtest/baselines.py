"""Two yardsticks for the speed comparisons of benchmarks/ratios.py, each a plain aiohttp app:

- `implicit`: a shopper's recommendations as a store would get them from implicit alone. The
  served model's factors in an `AlternatingLeastSquares`, the shopper's session items folded in
  by `recommend(recalculate_user=True)` and ranked over the whole catalog by implicit's own
  top-k, with the session's items filtered out. No index, no Redis, no blend, no business
  rules: the sessions are read from a JSON file into memory at start.
- `bare`: a handler that answers a constant JSON body: the HTTP floor of aiohttp on this machine.

    python -m loadtest.baselines implicit --store STORE --sessions sessions.json --port 18091
    python -m loadtest.baselines bare --port 18092

Both answer `GET /rec?session_id=…&k=…` with `{"items": [{"id", "score"}…]}`, single-threaded
(OpenBLAS and implicit's top-k on one thread), so that one core's cost compares with one
Vitrine worker's.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from aiohttp import web  # noqa: E402


def implicit_app(store: Path, sessions_file: Path) -> web.Application:
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    from models.artifact import load_current

    art = load_current(store)
    params = art.params
    model = AlternatingLeastSquares(factors=art.item_factors.shape[1],
                                    regularization=params["regularization"],
                                    alpha=params.get("alpha", 1.0), num_threads=1,
                                    random_state=0)
    # In RAM, contiguous float32 as implicit's own fit leaves them.
    model.item_factors = np.array(art.item_factors, dtype=np.float32, order="C")  # a writable copy
    model.user_factors = np.zeros((1, model.item_factors.shape[1]), dtype=np.float32)
    ids, index, n_items = art.items.ids, art.item_index, len(art.items.ids)
    view = float(art.event_weights.get("view", 1.0))
    sessions: dict[str, list[str]] = orjson.loads(sessions_file.read_bytes())
    _ = model.YtY  # computed once, as a long-running server would

    async def rec(request: web.Request) -> web.Response:
        k = int(request.query.get("k", "20"))
        rows = [index[i] for i in sessions.get(request.query.get("session_id", ""), ()) if i in index]
        user_items = csr_matrix((np.full(len(rows), view, dtype=np.float32),
                                 (np.zeros(len(rows), dtype=np.int32), np.asarray(rows, dtype=np.int32))),
                                shape=(1, n_items))
        found, scores = model.recommend(0, user_items, N=k, recalculate_user=True,
                                        filter_already_liked_items=True)
        pairs = zip(found.tolist(), scores.tolist(), strict=True)
        body = {"items": [{"id": ids[i], "score": s} for i, s in pairs]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/rec", rec)
    return app


def bare_app() -> web.Application:
    body = orjson.dumps({"items": [{"id": f"i{i}", "score": 1.0} for i in range(10)]})

    async def rec(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/rec", rec)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["implicit", "bare"])
    ap.add_argument("--store", type=Path, help="implicit: the model store whose current version it serves")
    ap.add_argument("--sessions", type=Path, help="implicit: JSON {session_id: [item ids, newest first]}")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    if args.kind == "implicit" and not (args.store and args.sessions):
        ap.error("implicit needs --store and --sessions")
    import uvloop

    uvloop.install()
    app = implicit_app(args.store, args.sessions) if args.kind == "implicit" else bare_app()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
