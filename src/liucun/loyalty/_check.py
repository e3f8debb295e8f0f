"""``check``: every invariant of the ledger, verified from the rows themselves.

- each transaction's legs sum to zero per unit (double entry);
- each transaction's member legs add up to its recorded effect, and a reversal is the
  exact opposite of what it reverses (no key has a duplicate or partial effect) — or, a
  share reversal (:func:`~liucun.loyalty.reverse_share`), takes back no more than its
  original booked;
- each member account's balance and growth value equal the sum of its legs, its version
  the number of transactions that touched it, and its last ``balance_after`` its balance;
- each lot's ``remaining`` equals the sum of its legs, lies within 0 and its points, and an
  account's lots hold exactly its balance when that is not negative (none when it is);
- no balance is negative in a program that forbids it;
- a decay (loss aversion) only takes points, and only to the program account ``decayed``,
  which nothing but decays and their reversals touches.

Aggregates run in the database (one ``GROUP BY`` per invariant), so a check reads each
table once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from liucun.loyalty._models import CheckReport
from liucun.loyalty._partial import share_violations
from liucun.state import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyProgramPolicy,
    LoyaltyTransaction,
)

#: At most this many violations are listed per invariant (the count is always given).
_LIST = 20


def check(ws: Any) -> CheckReport:
    """Verify every ledger invariant, and the coupons' (:func:`coupon_check`);
    ``report.ok`` is True when none is violated."""
    violations: list[str] = []
    with ws.state.read() as s:
        E, T, A, L = LoyaltyEntry, LoyaltyTransaction, LoyaltyAccount, LoyaltyLot
        n_entries = int(s.scalar(select(func.count()).select_from(E)) or 0)
        txs = {
            row.id: row
            for row in s.execute(
                select(T.id, T.key, T.kind, T.account_id, T.points, T.growth, T.reverses_id)
            )
        }
        accounts = {
            row.id: row
            for row in s.execute(
                select(A.id, A.program, A.user_id, A.balance, A.growth_value, A.version)
            )
        }
        # 1. double entry: each transaction's legs sum to zero per unit
        unbalanced = s.execute(
            select(E.transaction_id, E.unit, func.sum(E.amount))
            .group_by(E.transaction_id, E.unit)
            .having(func.sum(E.amount) != 0)
        ).all()
        _add(
            violations,
            [
                f"transaction {txs[t].key!r}: its {unit} legs sum to {total:+,}, not 0"
                for t, unit, total in unbalanced
            ],
            "transactions whose legs do not balance",
        )
        # 2. member legs = the transaction's effect; legs on the transaction's own account
        member: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
        for t, account_id, unit, total in s.execute(
            select(E.transaction_id, E.account_id, E.unit, func.sum(E.amount))
            .where(E.account_id.is_not(None))
            .group_by(E.transaction_id, E.account_id, E.unit)
        ):
            tx = txs[t]
            if account_id != tx.account_id:
                violations.append(
                    f"transaction {tx.key!r} has legs on account {account_id}, not on its own "
                    f"account {tx.account_id}"
                )
            member[t][0 if unit == "points" else 1] += int(total)
        wrong = [
            f"transaction {tx.key!r} ({tx.kind}) records {tx.points:+,} points and "
            f"{tx.growth:+,} growth but its member legs add {member[t][0]:+,} and "
            f"{member[t][1]:+,}"
            for t, tx in txs.items()
            if (member[t][0], member[t][1]) != (tx.points, tx.growth)
        ]
        _add(violations, wrong, "transactions whose effect differs from their legs")
        reversed_by: dict[int, list[str]] = defaultdict(list)
        for tx in txs.values():
            if tx.reverses_id is not None:
                reversed_by[tx.reverses_id].append(tx.key)
                original = txs.get(tx.reverses_id)
                if original is not None and (tx.points, tx.growth) != (
                    -original.points,
                    -original.growth,
                ):
                    violations.append(
                        f"reversal {tx.key!r} takes {tx.points:+,} points and {tx.growth:+,} "
                        f"growth, not the opposite of {original.key!r} "
                        f"({original.points:+,}, {original.growth:+,})"
                    )
        violations.extend(share_violations(s, txs))
        for original_id, keys in reversed_by.items():
            if len(keys) > 1:
                violations.append(
                    f"{txs[original_id].key!r} was reversed {len(keys)} times ({', '.join(keys)})"
                )
        # 3. accounts: materialized balance, growth value and version
        sums: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
        for account_id, unit, total in s.execute(
            select(E.account_id, E.unit, func.sum(E.amount))
            .where(E.account_id.is_not(None))
            .group_by(E.account_id, E.unit)
        ):
            sums[account_id][0 if unit == "points" else 1] = int(total)
        counts = dict(s.execute(select(T.account_id, func.count()).group_by(T.account_id)).all())
        last_ids = s.execute(select(T.account_id, func.max(T.id)).group_by(T.account_id)).all()
        last_balance = {account_id: tx_id for account_id, tx_id in last_ids}
        after = dict(
            s.execute(
                select(T.id, T.balance_after).where(  # a subquery: no list of 100k ids
                    T.id.in_(select(func.max(T.id)).group_by(T.account_id).scalar_subquery())
                )
            ).all()
        )
        bad: list[str] = []
        for a in accounts.values():
            who = f"account of {a.user_id!r} in {a.program!r}"
            points, growth = sums[a.id]
            if a.balance != points:
                bad.append(f"{who}: balance {a.balance:,} but its entries sum to {points:,}")
            if a.growth_value != growth:
                bad.append(
                    f"{who}: growth value {a.growth_value:,} but its entries sum to {growth:,}"
                )
            if a.version != counts.get(a.id, 0):
                bad.append(
                    f"{who}: version {a.version} but {counts.get(a.id, 0)} transactions touched it"
                )
            last = last_balance.get(a.id)
            if last is not None and after.get(last) != a.balance:
                bad.append(
                    f"{who}: balance {a.balance:,} but its last transaction left "
                    f"{after.get(last):,}"
                )
        _add(violations, bad, "accounts whose materialized figures differ from their entries")
        # 4. lots
        on_lot = dict(
            s.execute(
                select(E.lot_id, func.sum(E.amount)).where(E.lot_id.is_not(None)).group_by(E.lot_id)
            ).all()
        )
        held: dict[int, int] = defaultdict(int)
        bad = []
        for lot in s.execute(select(L.id, L.account_id, L.points, L.remaining)):
            held[lot.account_id] += lot.remaining
            if lot.remaining != int(on_lot.get(lot.id, 0)):
                bad.append(
                    f"lot {lot.id}: remaining {lot.remaining:,} but its entries sum to "
                    f"{int(on_lot.get(lot.id, 0)):,}"
                )
            if not 0 <= lot.remaining <= lot.points:
                bad.append(f"lot {lot.id}: remaining {lot.remaining:,} outside 0..{lot.points:,}")
        for a in accounts.values():
            if held[a.id] != max(a.balance, 0):
                bad.append(
                    f"account of {a.user_id!r} in {a.program!r}: its lots hold "
                    f"{held[a.id]:,} points but its balance is {a.balance:,}"
                )
        _add(violations, bad, "lots that disagree with their entries or account")
        # 5. negative balances where forbidden
        allowed = {
            name
            for name, ok in s.execute(
                select(LoyaltyProgramPolicy.name, LoyaltyProgramPolicy.allow_negative)
            )
            if ok
        }
        negative = [
            f"account of {a.user_id!r} in {a.program!r}: balance {a.balance:,} is negative "
            "and the program forbids negative balances"
            for a in accounts.values()
            if a.balance < 0 and a.program not in allowed
        ]
        _add(violations, negative, "negative balances where the program forbids them")
        # 6. decays: points taken from the member, booked on 'decayed' and nowhere else
        bad = []
        for t, name in s.execute(
            select(E.transaction_id, E.program_account)
            .where(E.program_account.is_not(None))
            .distinct()
        ):
            tx = txs[t]
            kind = txs[tx.reverses_id].kind if tx.reverses_id in txs else tx.kind
            if (kind == "decay") != (name == "decayed"):
                bad.append(
                    f"transaction {tx.key!r} ({tx.kind}) has a leg on the program account "
                    f"{name!r}; decays go to 'decayed' and only decays do"
                )
        bad.extend(
            f"decay {tx.key!r} records {tx.points:+,} points and {tx.growth:+,} growth; a "
            "decay only takes points"
            for tx in txs.values()
            if tx.kind == "decay" and (tx.points >= 0 or tx.growth != 0)
        )
        _add(violations, bad, "decays booked otherwise than on 'decayed'")
    # coupons and benefits: no code redeemed twice, caps and budgets held, grants paid
    from liucun.loyalty._coupons import coupon_check

    violations.extend(coupon_check(ws))
    return CheckReport(
        accounts=len(accounts),
        transactions=len(txs),
        entries=n_entries,
        violations=violations,
    )


def _add(violations: list[str], found: list[str], what: str) -> None:
    violations.extend(found[:_LIST])
    if len(found) > _LIST:
        violations.append(f"… and {len(found) - _LIST:,} more {what}")
