"""What the tabular model thought of the other users of a transaction's card, device and IP.

Stacked graphical learning (Kou & Cohen, 2007): a first model scores every transaction from
its own history; a second reads, beside its own features, the highest first-stage score among
the *other* users of the same card, device or IP in the last days. A relay or star ring's
members share a device or a card with one or two others, so their groups look like families to
the ring rule until labels arrive; but their bust-out transactions look odd one by one, and a
member's score tells on the next member before any label does. Labels are never read, only
scores, so it works the week a ring starts.

Everything is defined as an online engine could keep it: per entity, a user's highest score of
each UTC day, kept for ``window_days`` days and today; an entity with more than ``hub_cap``
users in that window (a carrier IP, a shop's terminal) ties strangers and gives NaN.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gnn.features import DAY_US
from gnn.graphdata import KINDS, TxnArrays
from gnn.tabular import XgbConfig, XgbModel, fit_xgb

#: The kinds whose other users are read (a merchant's users are strangers).
NB_KINDS: Final[tuple[str, ...]] = ("card", "device", "ip")
#: Per transaction: the highest first-stage score of another user of its card, device, IP.
NB_FEATURES: Final[tuple[str, ...]] = tuple(f"nb_{k}" for k in NB_KINDS)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _entity_column(
    ent: I64, user: I64, day: I64, score: F64, *, window_days: int, hub_cap: int
) -> F64:
    """One kind's feature for rows already in time order; ``ent`` -1 where missing."""
    out = np.full(len(ent), np.nan)
    rows = np.flatnonzero(ent >= 0)
    order = rows[np.argsort(ent[rows], kind="stable")]
    current = -1
    buckets: dict[int, dict[int, float]] = {}
    for i in order.tolist():
        e, u, d = int(ent[i]), int(user[i]), int(day[i])
        if e != current:
            current, buckets = e, {}
        for old in [k for k in buckets if k < d - window_days]:
            del buckets[old]
        seen: set[int] = {u}
        best = -1.0
        # one day over the cap is a hub already; this also bounds the work per row
        hub = any(len(per_user) > hub_cap for per_user in buckets.values())
        for per_user in () if hub else buckets.values():
            seen.update(per_user)
            for v, s in per_user.items():
                if v != u and s > best:
                    best = s
        if not hub and len(seen) <= hub_cap and best >= 0.0:
            out[i] = best
        s_i = float(score[i])
        if s_i == s_i:  # a NaN score (no first-stage model yet) is not kept
            today = buckets.setdefault(d, {})
            if s_i > today.get(u, -1.0):
                today[u] = s_i
    return out


def neighbour_scores(a: TxnArrays, score: F64, *, window_days: int = 7, hub_cap: int = 50) -> F64:
    """NB_FEATURES [n, 3] for a world's transactions (rows in ``a``'s time order) from each
    transaction's first-stage ``score`` [n]: every value comes from transactions before it."""
    user = a.node[:, KINDS.index("user")]
    day = a.t // DAY_US
    cols = [
        _entity_column(
            a.node[:, KINDS.index(k)], user, day, score, window_days=window_days, hub_cap=hub_cap
        )
        for k in NB_KINDS
    ]
    out: F64 = np.column_stack(cols)
    return out


def user_groups(a: TxnArrays, *, hub_cap: int = 50) -> I64:
    """Per row, the group of its user: users joined by a card, device or IP of at most
    ``hub_cap`` users over the whole history (connected components). Folds must keep such
    users together: two members of a ring share the device's velocity features, so a model
    fitted on one member's label scores the other high, and the second stage would learn that
    a neighbour's score gives a label away, which it never does on new transactions."""
    user = a.node[:, KINDS.index("user")]
    src, dst = [], []
    for k in NB_KINDS:
        ent = a.node[:, KINDS.index(k)]
        ok = ent >= 0
        pairs = np.unique(np.column_stack([user[ok], ent[ok]]), axis=0)
        users_of = np.bincount(pairs[:, 1], minlength=a.n_nodes)
        pairs = pairs[users_of[pairs[:, 1]] <= hub_cap]
        src.append(pairs[:, 0])
        dst.append(pairs[:, 1])
    s, d = np.concatenate(src), np.concatenate(dst)
    g = coo_matrix((np.ones(len(s)), (s, d)), shape=(a.n_nodes, a.n_nodes))
    _, label = connected_components(g, directed=False)
    out: I64 = label[user].astype(np.int64)
    return out


def first_stage(
    x: F64,
    known: I64,
    *,
    fit: I64,
    val: I64,
    groups: I64,
    features: list[str],
    seed: int,
    folds: int = 4,
    cfg: XgbConfig | None = None,
    full: XgbModel | None = None,
) -> F64:
    """The first model's score [n] for every row of ``x`` [n, f]: rows of ``fit`` out of fold
    (folds by ``groups``, `user_groups`, so no user's own labels, nor those of the users it
    shares a card, device or IP with, score it), every other row by the model fitted on
    all of ``fit``. In-fold scores would be overconfident where the second model learns to read
    them. ``val`` rows early-stop every fit; ``full``, when given, is the model already fitted
    on all of ``fit`` (the evaluation's tabular model (b))."""
    out = np.full(len(x), np.nan)
    fold = (groups[fit] % folds).astype(np.int64)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(folds)[fold]
    x_val, y_val = x[val], known[val]
    for f in range(folds):
        train, held = fit[fold != f], fit[fold == f]
        if len(held) == 0:
            continue
        model = fit_xgb(
            x[train], known[train], x_val, y_val, features=features, seed=seed + f, cfg=cfg
        )
        out[held] = model.predict(x[held])
    model = full or fit_xgb(x[fit], known[fit], x_val, y_val, features=features, seed=seed, cfg=cfg)
    rest = np.setdiff1d(np.arange(len(x)), fit)
    out[rest] = model.predict(x[rest])
    return out
