"""Identity resolution: hand examples, a union-find oracle, and properties of the mapping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import InvalidInput
from liucun.ingest._identity import (
    USER_ID,
    IdentityChanges,
    identity_changes,
    resolve_identities,
)
from liucun.schema import arrow_schema

Link = tuple[str, str, str, str]
Row = tuple[str, str, str]  # (alias_type, alias, user_id)

NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def links_table(links: list[Link], *, string_type: pa.DataType | None = None) -> pa.Table:
    string_type = string_type or pa.string()
    columns = list(zip(*links, strict=True)) if links else [(), (), (), ()]
    names = ("alias_type_a", "alias_a", "alias_type_b", "alias_b")
    return pa.table(
        {n: pa.array(list(c), type=string_type) for n, c in zip(names, columns, strict=True)}
    )


def rows(resolved: pa.Table) -> list[Row]:
    """The result as (alias_type, alias, user_id) tuples, in the table's own order."""
    return list(
        zip(
            resolved.column("alias_type").to_pylist(),
            resolved.column("alias").to_pylist(),
            resolved.column("user_id").to_pylist(),
            strict=True,
        )
    )


def oracle(links: list[Link], users: Sequence[str] = ()) -> list[Row]:
    """Plain union-find over (alias_type, alias) nodes; the canonical id is the min user_id."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for ta, a, tb, b in links:
        parent[find((ta, a))] = find((tb, b))
    for u in users:
        find((USER_ID, u))
    members: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for node in parent:
        members.setdefault(find(node), []).append(node)
    out = []
    for nodes in members.values():
        user_ids = [alias for alias_type, alias in nodes if alias_type == USER_ID]
        if user_ids:
            out += [(alias_type, alias, min(user_ids)) for alias_type, alias in nodes]
    return sorted(out)


# -- hand examples -----------------------------------------------------------------------


def test_anonymous_visitor_maps_to_the_user_who_logged_in() -> None:
    resolved = resolve_identities(links_table([("anonymous_id", "cookie-1", USER_ID, "u7")]))
    assert resolved.schema == pa.schema(
        [
            pa.field("alias", pa.string(), nullable=False),
            pa.field("alias_type", pa.string(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
        ]
    )
    assert rows(resolved) == [("anonymous_id", "cookie-1", "u7"), (USER_ID, "u7", "u7")]


def test_two_users_sharing_an_email_merge_into_the_smaller_id() -> None:
    links = [(USER_ID, "u2", "email_hash", "e"), (USER_ID, "u10", "email_hash", "e")]
    # "u10" < "u2" in str order: canonical ids compare as text, not as numbers.
    assert rows(resolve_identities(links_table(links))) == [
        ("email_hash", "e", "u10"),
        (USER_ID, "u10", "u10"),
        (USER_ID, "u2", "u10"),
    ]


def test_links_are_transitive_along_a_chain() -> None:
    links = [
        ("device_id", "d1", "anonymous_id", "a1"),
        ("anonymous_id", "a1", "phone_hash", "p1"),
        ("phone_hash", "p1", "loyalty_card", "c1"),
        ("loyalty_card", "c1", USER_ID, "u1"),
    ]
    assert rows(resolve_identities(links_table(links))) == [
        ("anonymous_id", "a1", "u1"),
        ("device_id", "d1", "u1"),
        ("loyalty_card", "c1", "u1"),
        ("phone_hash", "p1", "u1"),
        (USER_ID, "u1", "u1"),
    ]


def test_an_anonymous_only_component_gets_no_mapping() -> None:
    links = [
        ("anonymous_id", "a1", "device_id", "d1"),
        ("device_id", "d1", "email_hash", "e1"),
        ("anonymous_id", "a2", USER_ID, "u1"),
    ]
    assert rows(resolve_identities(links_table(links))) == [
        ("anonymous_id", "a2", "u1"),
        (USER_ID, "u1", "u1"),
    ]


def test_no_user_at_all_gives_an_empty_result() -> None:
    resolved = resolve_identities(links_table([("anonymous_id", "a", "device_id", "d")]))
    assert resolved.num_rows == 0
    assert resolved.column_names == ["alias", "alias_type", "user_id"]


def test_alias_type_is_part_of_the_node() -> None:
    links = [
        ("anonymous_id", "x", USER_ID, "u2"),
        ("device_id", "x", USER_ID, "u1"),
        ("email_hash", "u3", "anonymous_id", "y"),  # the string "u3", but not a user_id
    ]
    assert rows(resolve_identities(links_table(links))) == [
        ("anonymous_id", "x", "u2"),
        ("device_id", "x", "u1"),
        (USER_ID, "u1", "u1"),
        (USER_ID, "u2", "u2"),
    ]


def test_canonical_id_follows_python_str_order() -> None:
    users = ["é", "z", "Z", "\U0001f600", "\uffff", "10", "9"]
    links = [(USER_ID, u, "email_hash", "shared") for u in users]
    resolved = resolve_identities(links_table(links))
    assert set(resolved.column("user_id").to_pylist()) == {min(users)} == {"10"}
    without_digits = [(USER_ID, u, "email_hash", "shared") for u in users[:5]]
    assert set(resolve_identities(links_table(without_digits))["user_id"].to_pylist()) == {"Z"}
    high = [(USER_ID, u, "email_hash", "shared") for u in ("\U0001f600", "\uffff")]
    # UTF-8 byte order agrees with code point order, even beyond the BMP.
    assert set(resolve_identities(links_table(high))["user_id"].to_pylist()) == {"\uffff"}


def test_users_without_links_map_to_themselves() -> None:
    links = [("anonymous_id", "a1", USER_ID, "u2")]
    resolved = resolve_identities(links_table(links), users=pa.array(["u3", "u2", "u1", "u3"]))
    assert rows(resolved) == [
        ("anonymous_id", "a1", "u2"),
        (USER_ID, "u1", "u1"),
        (USER_ID, "u2", "u2"),
        (USER_ID, "u3", "u3"),
    ]
    only_users = resolve_identities(links_table([]), users=pa.chunked_array([["b"], ["a"]]))
    assert rows(only_users) == [(USER_ID, "a", "a"), (USER_ID, "b", "b")]


def test_empty_input_gives_an_empty_table_with_the_schema() -> None:
    for users in (None, pa.array([], type=pa.string())):
        resolved = resolve_identities(links_table([]), users=users)
        assert resolved.num_rows == 0
        assert resolved.column_names == ["alias", "alias_type", "user_id"]


def test_self_links_extra_columns_and_string_flavours_are_accepted() -> None:
    links = [(USER_ID, "u1", USER_ID, "u1"), ("anonymous_id", "a", USER_ID, "u1")]
    expected = [("anonymous_id", "a", "u1"), (USER_ID, "u1", "u1")]
    table = links_table(links).append_column("source", pa.array(["events", "users"]))
    assert rows(resolve_identities(table)) == expected
    assert rows(resolve_identities(links_table(links, string_type=pa.large_string()))) == expected
    chunked = pa.concat_tables([links_table(links[:1]), links_table(links[1:])])
    assert chunked.column("alias_a").num_chunks == 2
    assert rows(resolve_identities(chunked)) == expected


def test_missing_link_column_is_refused() -> None:
    table = links_table([("anonymous_id", "a", USER_ID, "u")]).drop_columns(["alias_b"])
    with pytest.raises(InvalidInput, match=r"links lacks column.*alias_b"):
        resolve_identities(table)


def test_null_alias_is_refused() -> None:
    table = links_table([("anonymous_id", "a", USER_ID, "u")]).set_column(
        3, "alias_b", pa.array([None], type=pa.string())
    )
    with pytest.raises(InvalidInput, match="'alias_b' has 1 null"):
        resolve_identities(table)
    with pytest.raises(InvalidInput, match="users has 1 null"):
        resolve_identities(links_table([]), users=pa.array(["u", None]))


def test_non_string_column_is_refused() -> None:
    table = links_table([("anonymous_id", "a", USER_ID, "u")]).set_column(
        3, "alias_b", pa.array([7])
    )
    with pytest.raises(InvalidInput, match="'alias_b' is int64; cast it to string"):
        resolve_identities(table)


def test_many_random_links_match_the_oracle() -> None:
    rng = np.random.default_rng(20250301)
    types = np.array([USER_ID, "anonymous_id", "device_id", "email_hash"])
    n = 20_000
    ta, tb = types[rng.integers(0, 4, n)], types[rng.integers(0, 4, n)]
    a = rng.integers(0, 15_000, n).astype(str)
    b = rng.integers(0, 15_000, n).astype(str)
    links = list(zip(ta.tolist(), a.tolist(), tb.tolist(), b.tolist(), strict=True))
    resolved = rows(resolve_identities(links_table(links)))
    assert resolved == oracle(links)
    # The graph is sparse enough to leave both merged users and anonymous-only components.
    assert len({user for _, _, user in resolved}) < sum(t == USER_ID for t, _, _ in resolved)
    assert len(resolved) < len({(t, x) for t, x, *_ in links} | {(t, x) for *_, t, x in links})


def test_many_alias_types_match_the_oracle() -> None:
    """Hundreds of alias types make the (type, alias) key space sparse (hash numbering)."""
    rng = np.random.default_rng(7)
    n = 600
    ta = [f"type{i}" for i in rng.integers(0, 400, n)]
    a = [f"x{i}" for i in rng.integers(0, 300, n)]
    tb = [
        USER_ID if flip else f"type{i}"
        for flip, i in zip(rng.random(n) < 0.3, rng.integers(0, 400, n), strict=True)
    ]
    b = [f"u{i}" for i in rng.integers(0, 300, n)]
    links = list(zip(ta, a, tb, b, strict=True))
    assert rows(resolve_identities(links_table(links))) == oracle(links)


# -- properties ----------------------------------------------------------------------------

alias_types = st.sampled_from([USER_ID, USER_ID, "anonymous_id", "device_id", "email_hash"])
# A small alphabet so aliases collide often; it mixes cases, digits and non-ASCII.
aliases = st.text(alphabet="aAb9é中\U0001f600", max_size=2)
link = st.tuples(alias_types, aliases, alias_types, aliases)
link_lists = st.lists(link, max_size=30)
user_lists = st.lists(aliases, max_size=5)


@given(links=link_lists, users=user_lists)
@settings(deadline=None)
def test_canonical_id_is_the_min_user_id_of_the_component(
    links: list[Link], users: list[str]
) -> None:
    resolved = resolve_identities(links_table(links), users=pa.array(users, type=pa.string()))
    assert rows(resolved) == oracle(links, users)


@given(links=link_lists, data=st.data())
@settings(deadline=None)
def test_result_does_not_depend_on_link_order_or_orientation(
    links: list[Link], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(links))))
    flips = data.draw(st.lists(st.booleans(), min_size=len(links), max_size=len(links)))
    shuffled = [
        (links[i][2], links[i][3], links[i][0], links[i][1]) if flip else links[i]
        for i, flip in zip(order, flips, strict=True)
    ]
    assert resolve_identities(links_table(shuffled)).equals(resolve_identities(links_table(links)))


@given(links=link_lists, repeats=st.lists(st.integers(0, 29), max_size=10))
@settings(deadline=None)
def test_resolution_is_idempotent(links: list[Link], repeats: list[int]) -> None:
    once = resolve_identities(links_table(links))
    assert resolve_identities(links_table(links)).equals(once)
    duplicated = links + [links[i] for i in repeats if i < len(links)] + links
    assert resolve_identities(links_table(duplicated)).equals(once)
    changes = identity_changes(once, once, now=NOW, load_id="L2")
    assert (changes.close.num_rows, changes.open.num_rows, changes.merges) == (0, 0, 0)


@given(before=link_lists, added=link_lists)
@settings(deadline=None)
def test_adding_links_never_splits_a_person(before: list[Link], added: list[Link]) -> None:
    old = {(t, a): u for t, a, u in rows(resolve_identities(links_table(before)))}
    new = {(t, a): u for t, a, u in rows(resolve_identities(links_table(before + added)))}
    assert old.keys() <= new.keys()  # an alias that had a user keeps one
    for alias, user in old.items():
        assert new[alias] <= user  # a merge only ever moves to a smaller canonical id
        # every alias that shared its user before still shares one with it
        assert all(new[other] == new[alias] for other, u in old.items() if u == user)


@given(before=link_lists, added=link_lists)
@settings(deadline=None)
def test_changes_turn_the_old_mapping_into_the_new_one(
    before: list[Link], added: list[Link]
) -> None:
    old = resolve_identities(links_table(before))
    new = resolve_identities(links_table(before + added))
    changes = identity_changes(old, new, now=NOW, load_id="L3")
    closed = set(
        zip(
            changes.close["alias_type"].to_pylist(), changes.close["alias"].to_pylist(), strict=True
        )
    )
    kept = {(t, a): u for t, a, u in rows(old) if (t, a) not in closed}
    opened = {
        (t, a): u for t, a, u in rows(changes.open.select(["alias", "alias_type", "user_id"]))
    }
    assert kept.keys().isdisjoint(opened.keys())
    assert kept | opened == {(t, a): u for t, a, u in rows(new)}
    old_map = {(t, a): u for t, a, u in rows(old)}
    assert changes.merges == sum(1 for k, u in opened.items() if k in old_map and old_map[k] != u)


# -- identity_changes --------------------------------------------------------------------


def identities(mapping: list[Row], *, load_id: str = "L1") -> pa.Table:
    """Current rows of the `identities` table, as the warehouse would return them."""
    n = len(mapping)
    alias_type, alias, user_id = zip(*mapping, strict=True) if mapping else ((), (), ())
    return pa.table(
        {
            "alias": list(alias),
            "alias_type": list(alias_type),
            "user_id": list(user_id),
            "valid_from": [NOW - timedelta(days=30)] * n,
            "valid_to": pa.nulls(n, type=pa.timestamp("us", tz="UTC")),
            "load_id": [load_id] * n,
        },
        schema=arrow_schema("identities"),
    )


def test_a_merge_closes_the_old_row_and_opens_a_new_one() -> None:
    current = identities(
        [
            ("anonymous_id", "a1", "u1"),
            ("anonymous_id", "a2", "u2"),
            ("email_hash", "e2", "u2"),
            (USER_ID, "u1", "u1"),
            (USER_ID, "u2", "u2"),
        ]
    )
    links = [
        ("anonymous_id", "a1", USER_ID, "u1"),
        ("anonymous_id", "a2", USER_ID, "u2"),
        ("email_hash", "e2", USER_ID, "u2"),
        ("email_hash", "e2", USER_ID, "u1"),  # new: u2 shares u1's email
    ]
    changes = identity_changes(
        current, resolve_identities(links_table(links)), now=NOW, load_id="L9"
    )
    assert isinstance(changes, IdentityChanges)
    assert changes.merges == 3
    assert changes.close.column_names == ["alias_type", "alias"]
    assert changes.close.to_pylist() == [
        {"alias_type": "anonymous_id", "alias": "a2"},
        {"alias_type": "email_hash", "alias": "e2"},
        {"alias_type": USER_ID, "alias": "u2"},
    ]
    assert changes.open.schema == arrow_schema("identities")
    assert changes.open.to_pylist() == [
        {
            "alias": alias,
            "alias_type": alias_type,
            "user_id": "u1",
            "valid_from": NOW,
            "valid_to": None,
            "load_id": "L9",
        }
        for alias_type, alias in [("anonymous_id", "a2"), ("email_hash", "e2"), (USER_ID, "u2")]
    ]


def test_unchanged_aliases_produce_nothing_and_new_ones_only_open() -> None:
    current = identities([("anonymous_id", "a1", "u1"), (USER_ID, "u1", "u1")])
    links = [("anonymous_id", "a1", USER_ID, "u1"), ("device_id", "d1", USER_ID, "u1")]
    changes = identity_changes(
        current, resolve_identities(links_table(links)), now=NOW, load_id="L4"
    )
    assert changes.merges == 0
    assert changes.close.num_rows == 0
    assert changes.open.select(["alias_type", "alias", "user_id", "load_id"]).to_pylist() == [
        {"alias_type": "device_id", "alias": "d1", "user_id": "u1", "load_id": "L4"}
    ]


def test_an_alias_that_disappears_is_closed_without_counting_as_a_merge() -> None:
    current = identities([("anonymous_id", "a1", "u1"), (USER_ID, "u1", "u1")])
    resolved = resolve_identities(links_table([]), users=pa.array(["u1"]))
    changes = identity_changes(current, resolved, now=NOW, load_id="L5")
    assert changes.close.to_pylist() == [{"alias_type": "anonymous_id", "alias": "a1"}]
    assert changes.open.num_rows == 0
    assert changes.merges == 0


def test_the_first_resolution_opens_every_row() -> None:
    resolved = resolve_identities(links_table([("anonymous_id", "a1", USER_ID, "u1")]))
    changes = identity_changes(identities([]), resolved, now=NOW, load_id="L1")
    assert changes.close.num_rows == 0
    assert changes.merges == 0
    assert changes.open.select(["alias", "alias_type", "user_id"]).equals(
        resolved.cast(
            pa.schema([pa.field(n, pa.string()) for n in ("alias", "alias_type", "user_id")])
        )
    )


def test_now_is_stored_in_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    resolved = resolve_identities(links_table([("anonymous_id", "a1", USER_ID, "u1")]))
    changes = identity_changes(
        identities([]), resolved, now=datetime(2025, 3, 1, 20, 30, tzinfo=shanghai), load_id="L1"
    )
    assert set(changes.open["valid_from"].to_pylist()) == {NOW}
    assert changes.open["valid_from"].type == pa.timestamp("us", tz="UTC")


def test_naive_now_is_refused() -> None:
    resolved = resolve_identities(links_table([("anonymous_id", "a1", USER_ID, "u1")]))
    with pytest.raises(InvalidInput, match="has no time zone"):
        identity_changes(identities([]), resolved, now=datetime(2025, 3, 1), load_id="L1")


def test_a_key_twice_in_current_is_refused() -> None:
    current = identities([("anonymous_id", "a1", "u1"), ("anonymous_id", "a1", "u2")])
    with pytest.raises(InvalidInput, match=r"current maps some .* more than once"):
        identity_changes(current, current, now=NOW, load_id="L1")


def test_current_without_user_id_is_refused() -> None:
    current = identities([("anonymous_id", "a1", "u1")]).drop_columns(["user_id"])
    with pytest.raises(InvalidInput, match=r"current lacks column.*user_id"):
        identity_changes(current, current, now=NOW, load_id="L1")
