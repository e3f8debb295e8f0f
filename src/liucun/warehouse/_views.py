"""Views over the canonical tables that every analysis should start from."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def current_identities(identities: ir.Table) -> ir.Table:
    """The alias → canonical user mapping in force now (rows with no ``valid_to``)."""
    return identities.filter(identities.valid_to.isnull()).select(
        "alias_type", "alias", canonical=identities.user_id
    )


def resolved_events(events: ir.Table, identities: ir.Table) -> ir.Table:
    """Events with ``user_id`` replaced by the canonical user of merged aliases.

    A known ``user_id`` maps through its own alias; an anonymous event maps through its
    ``anonymous_id`` once that alias is linked to a user; the original ids stay in
    ``raw_user_id``. Events of unlinked anonymous visitors keep a NULL ``user_id``.
    """
    ids = current_identities(identities)
    by_user = ids.filter(ids.alias_type == "user_id").select(
        _u_alias=ids["alias"], _u_canon=ids.canonical
    )
    by_anon = ids.filter(ids.alias_type == "anonymous_id").select(
        _a_alias=ids["alias"], _a_canon=ids.canonical
    )
    joined = events.left_join(by_user, events.user_id == by_user._u_alias).left_join(
        by_anon, events.anonymous_id == by_anon._a_alias
    )
    canonical = ibis.coalesce(joined._u_canon, joined.user_id, joined._a_canon)
    return joined.select(
        *[c if c != "user_id" else canonical.name("user_id") for c in events.columns],
        raw_user_id=joined.user_id,
    )


def resolved_users(users: ir.Table, identities: ir.Table) -> ir.Table:
    """Users with a ``canonical_user_id`` column (their own id unless merged into another)."""
    ids = current_identities(identities)
    by_user = ids.filter(ids.alias_type == "user_id").select(
        _alias=ids["alias"], canonical_user_id=ids.canonical
    )
    joined = users.left_join(by_user, users.user_id == by_user._alias)
    return joined.select(
        *users.columns,
        canonical_user_id=ibis.coalesce(joined.canonical_user_id, joined.user_id),
    )


def canonical_customers(users: ir.Table, identities: ir.Table) -> ir.Table:
    """One row per canonical customer: the ``users`` columns with ``user_id`` the
    canonical id and the row's own id in ``raw_user_id``.

    When several user rows were merged into one customer, the canonical user's own row
    wins, then the most recently ingested one.
    """
    resolved = resolved_users(users, identities)
    own = (resolved.user_id == resolved.canonical_user_id).cast("int8")
    ranked = resolved.mutate(
        _rank=ibis.row_number().over(
            group_by="canonical_user_id",
            order_by=[ibis.desc(own), ibis.desc(resolved.ingested_at), resolved.user_id],
        )
    )
    first = ranked.filter(ranked._rank == 0)
    return first.select(
        *[c if c != "user_id" else first.canonical_user_id.name("user_id") for c in users.columns],
        raw_user_id=first.user_id,
    )
