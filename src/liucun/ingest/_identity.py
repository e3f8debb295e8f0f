"""Identity resolution: which aliases are the same person, and who that person is.

A customer appears under several *aliases*, each a ``(alias_type, alias)`` pair: a
``user_id`` (registered account), an ``anonymous_id`` (cookie or app instance), a
``device_id``, an ``email_hash``, a ``phone_hash``, a ``loyalty_card``… A *link* is an
observed pair of aliases that belong to the same person, such as an event that carries both
a user_id and an anonymous_id.

Aliases linked directly or transitively form one person (a connected component of the link
graph). The person's canonical id is the smallest ``user_id`` alias of the component, in
Python ``str`` order (Unicode code points, which is also UTF-8 byte order). Every alias of
such a component maps to it, including the other user_ids, which are thereby merged. A
component without any user_id gets no mapping: anonymous visitors stay anonymous.

Both functions are pure and vectorized over Arrow: nodes are numbered by dictionary
encoding and factorization, and components come from
:func:`scipy.sparse.csgraph.connected_components`. Nothing here reads or writes the
warehouse; the loaders turn :class:`IdentityChanges` into writes to ``identities``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from liucun.core import InvalidInput
from liucun.schema import arrow_schema

__all__ = ["USER_ID", "IdentityChanges", "identity_changes", "resolve_identities"]

USER_ID = "user_id"
"""The alias type whose aliases are canonical user ids."""

LINK_COLUMNS = ("alias_type_a", "alias_a", "alias_type_b", "alias_b")
_KEY = ("alias_type", "alias")
_RESOLVED_SCHEMA = pa.schema(
    [
        pa.field("alias", pa.string(), nullable=False),
        pa.field("alias_type", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class IdentityChanges:
    """What one resolution changes in the ``identities`` table.

    Attributes
    ----------
    close
        ``alias_type``, ``alias`` of the current rows to close (set ``valid_to = now``):
        their user_id changed, or they no longer belong to a user. Sorted by key.
    open
        New rows in the canonical ``identities`` schema, for aliases that are new or whose
        user_id changed; ``valid_from`` is ``now`` and ``valid_to`` is null. Sorted by key.
    merges
        How many aliases moved from one canonical user to another.
    """

    close: pa.Table
    open: pa.Table
    merges: int


def resolve_identities(
    links: pa.Table, users: pa.Array | pa.ChunkedArray | None = None
) -> pa.Table:
    """Map every alias that belongs to a known user onto its canonical user_id.

    Parameters
    ----------
    links
        One row per observed link, with string columns ``alias_type_a``, ``alias_a``,
        ``alias_type_b`` and ``alias_b`` and no nulls; other columns are ignored. A link
        may repeat and may join an alias to itself.
    users
        User ids known without any link (e.g. the ``users`` table); each becomes a
        ``user_id`` alias that maps to itself unless a link merges it into a smaller one.

    Returns
    -------
    pa.Table
        Columns ``alias``, ``alias_type``, ``user_id``: one row per ``(alias_type, alias)``
        whose component holds a user_id, sorted by ``(alias_type, alias)``. The result
        depends only on the *set* of links, not on their order or orientation.

    Raises
    ------
    InvalidInput
        A link column is missing, is not a string column, or holds nulls; or ``users``
        holds nulls.

    Examples
    --------
    >>> links = pa.table({
    ...     "alias_type_a": ["user_id", "user_id", "anonymous_id"],
    ...     "alias_a": ["u2", "u1", "a9"],
    ...     "alias_type_b": ["anonymous_id", "email_hash", "device_id"],
    ...     "alias_b": ["a1", "e1", "d9"],
    ... })
    >>> resolved = resolve_identities(links, users=pa.array(["u3"]))
    >>> resolved.to_pylist()  # doctest: +NORMALIZE_WHITESPACE
    [{'alias': 'a1', 'alias_type': 'anonymous_id', 'user_id': 'u2'},
     {'alias': 'e1', 'alias_type': 'email_hash', 'user_id': 'u1'},
     {'alias': 'u1', 'alias_type': 'user_id', 'user_id': 'u1'},
     {'alias': 'u2', 'alias_type': 'user_id', 'user_id': 'u2'},
     {'alias': 'u3', 'alias_type': 'user_id', 'user_id': 'u3'}]
    """
    n_links = _check_links(links)
    user_ids = _check_users(users)
    nodes = _number_aliases(links, user_ids)
    if nodes is None:
        return _RESOLVED_SCHEMA.empty_table()
    component = _components(nodes, n_links)
    canonical = _canonical_nodes(nodes, component)
    if canonical is None:
        return _RESOLVED_SCHEMA.empty_table()
    # every alias whose component holds a user maps to that component's canonical user
    keep = np.flatnonzero(canonical[component] >= 0)
    values = nodes.aliases.dictionary
    return pa.table(
        {
            "alias": values.take(nodes.alias_index[keep]).cast(pa.string()),
            "alias_type": nodes.types.dictionary.take(
                nodes.type_order[nodes.type_rank_of[keep]]
            ).cast(pa.string()),
            "user_id": values.take(nodes.alias_index[canonical[component[keep]]]).cast(pa.string()),
        },
        schema=_RESOLVED_SCHEMA,
    )


@dataclass(frozen=True)
class _Nodes:
    """The graph's nodes: one per distinct ``(alias_type, alias)``, numbered in key order.

    ``node`` gives the node of each alias occurrence (side a of every link, side b, then
    the bare users); ``type_rank_of`` and ``alias_index`` give each node's type (as its
    rank in str order) and its alias (as a position in ``aliases.dictionary``).
    """

    types: pa.DictionaryArray
    aliases: pa.DictionaryArray
    type_order: np.ndarray
    type_rank: np.ndarray
    node: np.ndarray
    type_rank_of: np.ndarray
    alias_index: np.ndarray

    @property
    def count(self) -> int:
        return len(self.alias_index)


def _number_aliases(links: pa.Table, user_ids: pa.Array | pa.ChunkedArray) -> _Nodes | None:
    """Number every distinct alias so that the integer order is ``(alias_type, alias)``
    in str order; None when there is no alias at all."""
    user_types = pa.array(np.full(len(user_ids), USER_ID, dtype=object), type=pa.string())
    types = _concat([links.column("alias_type_a"), links.column("alias_type_b"), user_types])
    aliases = _concat([links.column("alias_a"), links.column("alias_b"), user_ids])
    if len(aliases) == 0:
        return None
    # Rank the distinct types and aliases in str order, so that an integer key sorts nodes
    # by (alias_type, alias) and the smallest user_id of a component is its smallest key.
    type_dict = types.dictionary_encode()
    alias_dict = aliases.dictionary_encode()
    type_order, type_rank = _order_and_rank(type_dict.dictionary)
    alias_order, alias_rank = _order_and_rank(alias_dict.dictionary)
    n_alias = np.int64(len(alias_dict.dictionary))
    key = type_rank[_indices(type_dict)] * n_alias + alias_rank[_indices(alias_dict)]
    node, node_key = _number_nodes(key, space=len(type_dict.dictionary) * int(n_alias))
    return _Nodes(
        types=type_dict,
        aliases=alias_dict,
        type_order=type_order,
        type_rank=type_rank,
        node=node,
        type_rank_of=node_key // n_alias,
        alias_index=alias_order[node_key % n_alias],
    )


def _components(nodes: _Nodes, n_links: int) -> np.ndarray:
    """The connected component of each node, with every link an undirected edge."""
    n = nodes.count
    graph = csr_array(
        (np.ones(n_links), (nodes.node[:n_links], nodes.node[n_links : 2 * n_links])),
        shape=(n, n),
    )
    return connected_components(graph, directed=False)[1]


def _canonical_nodes(nodes: _Nodes, component: np.ndarray) -> np.ndarray | None:
    """Per component, its first user_id node in key order (its smallest user_id), or -1
    for a component without one; None when no alias is a user_id."""
    user_type = _find(nodes.types.dictionary, USER_ID)
    if user_type is None:
        return None
    user_nodes = np.flatnonzero(nodes.type_rank_of == nodes.type_rank[user_type])
    user_components = component[user_nodes]
    _, first = np.unique(user_components, return_index=True)
    canonical = np.full(int(component.max(initial=-1)) + 1, -1, dtype=np.int64)
    canonical[user_components[first]] = user_nodes[first]
    return canonical


def identity_changes(
    current: pa.Table, resolved: pa.Table, *, now: datetime, load_id: str
) -> IdentityChanges:
    """Compare the current mappings with a fresh resolution.

    Parameters
    ----------
    current
        The rows of ``identities`` whose ``valid_to`` is null: columns ``alias``,
        ``alias_type``, ``user_id`` (others are ignored), one row per key.
    resolved
        The output of :func:`resolve_identities`.
    now
        When the change takes effect; must be timezone-aware.
    load_id
        The load that produces the new rows.

    Returns
    -------
    IdentityChanges
        The rows to close, the rows to open, and how many aliases changed user. A
        resolution compared with itself yields no rows and no merges.

    Raises
    ------
    InvalidInput
        A required column is missing, ``now`` is naive, or a key repeats in ``current``
        or ``resolved``.

    Examples
    --------
    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> current = pa.table({"alias": ["a1", "u2"], "alias_type": ["anonymous_id", "user_id"],
    ...                     "user_id": ["u2", "u2"]})
    >>> resolved = pa.table({"alias": ["a1", "u2"], "alias_type": ["anonymous_id", "user_id"],
    ...                      "user_id": ["u1", "u1"]})
    >>> changes = identity_changes(current, resolved, now=now, load_id="L7")
    >>> changes.merges, changes.close.num_rows, changes.open.column("user_id").to_pylist()
    (2, 2, ['u1', 'u1'])
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(
            f"now={now.isoformat()} has no time zone; pass an aware datetime, "
            "e.g. datetime(2025, 1, 1, tzinfo=UTC)"
        )
    old = _keyed(current, "current")
    new = _keyed(resolved, "resolved")
    joined = old.join(
        new,
        keys=list(_KEY),
        join_type="full outer",
        left_suffix="_old",
        right_suffix="_new",
        coalesce_keys=True,
    )
    before, after = joined.column("user_id_old"), joined.column("user_id_new")
    changed = pc.fill_null(pc.not_equal(before, after), False)
    closing = pc.or_(changed, pc.and_(pc.is_valid(before), pc.is_null(after)))
    opening = pc.or_(changed, pc.and_(pc.is_null(before), pc.is_valid(after)))

    close = _sorted(joined.filter(closing).select(list(_KEY)))
    opened = _sorted(joined.filter(opening).select(["alias", "alias_type", "user_id_new"]))
    n_open = opened.num_rows
    schema = arrow_schema("identities")
    open_rows = pa.table(
        {
            "alias": opened.column("alias"),
            "alias_type": opened.column("alias_type"),
            "user_id": opened.column("user_id_new"),
            "valid_from": _constant(now.astimezone(UTC), schema.field("valid_from").type, n_open),
            "valid_to": pa.nulls(n_open, type=schema.field("valid_to").type),
            "load_id": _constant(load_id, pa.string(), n_open),
        },
        schema=schema,
    )
    return IdentityChanges(close=close, open=open_rows, merges=int(pc.sum(changed).as_py() or 0))


# -- helpers ---------------------------------------------------------------------------


def _check_links(links: pa.Table) -> int:
    missing = [c for c in LINK_COLUMNS if c not in links.column_names]
    if missing:
        raise InvalidInput(
            f"links lacks column(s) {', '.join(missing)}; a link table needs "
            f"{', '.join(LINK_COLUMNS)} (see the identity_links table)"
        )
    for name in LINK_COLUMNS:
        column = links.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InvalidInput(f"links column {name!r} is {column.type}; cast it to string")
        if column.null_count:
            raise InvalidInput(
                f"links column {name!r} has {column.null_count} null(s); "
                "drop the links that do not name both aliases"
            )
    return links.num_rows


def _check_users(users: pa.Array | pa.ChunkedArray | None) -> pa.Array | pa.ChunkedArray:
    if users is None:
        return pa.array([], type=pa.string())
    if not (pa.types.is_string(users.type) or pa.types.is_large_string(users.type)):
        raise InvalidInput(f"users is {users.type}; pass the user ids as strings")
    if users.null_count:
        raise InvalidInput(f"users has {users.null_count} null user id(s); drop them first")
    return users


def _concat(parts: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """One contiguous string array; large_string only when 32-bit offsets would overflow."""
    large = sum(part.nbytes for part in parts) >= 2**31 - 1
    string_type = pa.large_string() if large else pa.string()
    chunks: list[pa.Array] = []
    for part in parts:
        part = part.cast(string_type)
        chunks += part.chunks if isinstance(part, pa.ChunkedArray) else [part]
    return pa.concat_arrays(chunks) if chunks else pa.array([], type=string_type)


def _number_nodes(key: np.ndarray, *, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense node ids for integer ``key`` values in ``[0, space)``, numbered in key order.

    Returns each occurrence's node id and each node's key. A lookup table over the whole
    key space is used when it is small next to the input (a handful of alias types);
    otherwise a hash factorization.
    """
    if space > 8 * len(key) + 1024:
        node, node_key = pd.factorize(key, sort=True)
        return node, node_key
    seen = np.zeros(space, dtype=bool)
    seen[key] = True
    node_key = np.flatnonzero(seen)
    lookup = np.empty(space, dtype=np.int32 if len(node_key) < 2**31 else np.int64)
    lookup[node_key] = np.arange(len(node_key), dtype=lookup.dtype)
    return lookup[key], node_key


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _order_and_rank(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``values`` in sorted order, and each value's rank (its inverse)."""
    order = pc.sort_indices(values).to_numpy().astype(np.int64, copy=False)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return order, rank


def _find(values: pa.Array, value: str) -> int | None:
    position = pc.index(values, value).as_py()
    return None if position < 0 else position


def _keyed(table: pa.Table, name: str) -> pa.Table:
    """``alias``, ``alias_type``, ``user_id`` of ``table`` as strings, one row per key."""
    needed = ("alias", "alias_type", "user_id")
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InvalidInput(f"{name} lacks column(s) {', '.join(missing)}; it needs {needed}")
    keyed = pa.table({c: table.column(c).cast(pa.string()) for c in needed})
    if keyed.num_rows and keyed.group_by(list(_KEY)).aggregate([]).num_rows != keyed.num_rows:
        raise InvalidInput(
            f"{name} maps some (alias_type, alias) more than once; "
            "pass only the current row of each alias (valid_to is null)"
        )
    return keyed


def _constant(value: object, type: pa.DataType, n: int) -> pa.Array:
    return pc.fill_null(pa.nulls(n, type=type), pa.scalar(value, type=type))


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in _KEY])
