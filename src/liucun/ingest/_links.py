"""Keeping ``identity_links`` and ``identities`` up to date after a load."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from liucun.ingest._identity import identity_changes, resolve_identities
from liucun.schema import arrow_schema, column_names
from liucun.warehouse import Warehouse, Writer

_KEY = ["alias_type_a", "alias_a", "alias_type_b", "alias_b"]


def update_identities(
    wh: Warehouse, writer: Writer, links: Sequence[ir.Table], *, now: datetime, load_id: str
) -> tuple[int, int]:
    """Record new alias links and re-resolve identities.

    Returns the number of new links and of user accounts this load merged into another
    (canonical) user.

    Resolution runs over every link ever seen, so the result does not depend on the order
    in which links arrived, and re-running it changes nothing.
    """
    observed = links[0] if len(links) == 1 else ibis.union(*links)
    observed = observed.group_by(_KEY).aggregate(
        first_seen=observed.first_seen.min(), source=observed.source.min()
    )
    stored = wh.engine_table("identity_links")
    new = observed.anti_join(stored, _KEY).mutate(load_id=ibis.literal(load_id))
    new = new.select(*column_names("identity_links"))
    new_links = new.to_pyarrow()
    if new_links.num_rows == 0:
        return 0, 0
    existing = stored.select(*_KEY).to_pyarrow()
    current = wh.engine_table("identities")
    current = current.filter(current.valid_to.isnull()).to_pyarrow()
    every = pa.concat_tables([existing, new_links.select(_KEY)])
    changes = identity_changes(current, resolve_identities(every), now=now, load_id=load_id)
    writer.append("identity_links", ibis.memtable(new_links.cast(arrow_schema("identity_links"))))
    if changes.close.num_rows:
        keys = ibis.memtable(changes.close.select(["alias_type", "alias"]))
        old = wh.engine_table("identities")
        closing = old.filter(old.valid_to.isnull()).semi_join(keys, ["alias_type", "alias"])
        closing = closing.mutate(valid_to=ibis.literal(now))
        writer.upsert("identities", closing, key=["alias_type", "alias", "valid_from"])
    if changes.open.num_rows:
        opened = changes.open.select(list(column_names("identities")))
        writer.append("identities", ibis.memtable(opened.cast(arrow_schema("identities"))))
    opened = changes.open
    merged_accounts = (
        pc.sum(
            pc.and_(
                pc.equal(opened["alias_type"], "user_id"),
                pc.not_equal(opened["alias"], opened["user_id"]),
            )
        ).as_py()
        or 0
    )
    return new_links.num_rows, int(merged_accounts)
