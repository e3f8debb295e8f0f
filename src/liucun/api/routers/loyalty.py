"""``/v1/loyalty``: a customer's account and ledger, points accrued, redeemed and adjusted
under the ledger's rules, the program in force and its tiers, coupons issued.

Every write goes through :mod:`liucun.loyalty` (one short transaction in state, the
account locked, the ledger key unique). The ledger key of a write is the body's ``key``,
else ``api:<key_id>:<Idempotency-Key>``; a write needs one of the two, so that a retry
never books twice. Refusals are sentences: too few points, a coupon limit or budget, a
key used for another write (409); an amount or reason that is not valid (422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from liucun.api._auth import WriteRequirement
from liucun.api._keys import KeyInfo
from liucun.api._problems import Problem
from liucun.api._schemas import JsonResponse
from liucun.api.routers._common import WRITE_ERRORS, errors, router, service
from liucun.api.routers._resources import (
    MAX_NAME,
    Cursor,
    Limit,
    Page,
    ReadKey,
    not_found,
    offset_page,
    plain,
    records,
    refused,
)
from liucun.ingest import MAX_ID

api = router("/v1/loyalty", "loyalty")
WriteKey = Annotated[KeyInfo, Depends(WriteRequirement("loyalty:write"))]
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID, description="A customer id.")]
ProgramName = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME, description="A loyalty program, e.g. default.")
]
ProgramQuery = Annotated[
    str,
    Query(min_length=1, max_length=MAX_NAME, description="The ledger program (default: default)."),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The ledger key of this write (e.g. order-1001:points): a repeat with "
        "the same arguments returns the first result. Default: the Idempotency-Key header.",
    )
    program: str = Field(
        "default",
        min_length=1,
        max_length=MAX_NAME,
        description="The ledger program; one other than default must have been applied.",
    )
    reason: str | None = Field(None, max_length=500, description="Why (kept with the entry).")


class AccrueBody(_Body):
    """Points to add to the customer's account (it opens on first use)."""

    points: int = Field(gt=0, le=1_000_000_000, description="Points to add.")
    expires_at: datetime | None = Field(
        None, description="When what is left of these points expires (ISO 8601, with a zone)."
    )
    pending_days: int = Field(0, ge=0, le=3650, description="Days before they can be spent.")


class RedeemBody(_Body):
    """Points to spend, those expiring first first."""

    points: int = Field(gt=0, le=1_000_000_000, description="Points to spend.")


class AdjustBody(_Body):
    """A correction of the balance, with who asked and why."""

    points: int = Field(
        ge=-1_000_000_000, le=1_000_000_000, description="Non-zero; negative takes points."
    )
    reason: str = Field(min_length=1, max_length=500, description="Who asked and why.")


class CouponBody(BaseModel):
    """A coupon of the program in force to issue to a customer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    coupon_id: str = Field(min_length=1, max_length=MAX_NAME)
    user_id: str = Field(min_length=1, max_length=MAX_ID)
    key: str | None = Field(None, min_length=1, max_length=200)


class Expiring(BaseModel):
    points: int = Field(description="Points of the lot still unspent.")
    expires_at: datetime
    key: str = Field(description="The ledger key that added them.")


class AccountPublic(BaseModel):
    """A customer's loyalty account now."""

    user_id: str
    program: str
    tier: str | None = Field(description="The effective tier (null before the first review).")
    balance: int = Field(description="Points the customer can spend now.")
    pending: int = Field(description="Points awarded but not yet available.")
    posted: int = Field(description="The ledger balance (what `loyalty check` verifies).")
    growth_value: int
    version: int
    as_of: datetime
    expiring: list[Expiring] = Field(description="Lots with an expiry, soonest first.")


class PostingPublic(BaseModel):
    """One ledger write (``replayed``: the key was used before with the same arguments)."""

    model_config = ConfigDict(extra="allow")

    key: str
    kind: str
    program: str
    user_id: str
    points: int
    growth: int
    balance_after: int
    created_at: datetime
    reason: str | None
    reverses: str | None
    replayed: bool


class ProgramPublic(BaseModel):
    """The loyalty program in force and its applied versions."""

    program: str
    version: int = Field(description="The version in force.")
    definition: dict[str, Any] = Field(description="Tiers, earning, coupons, benefits, ….")
    versions: list[dict[str, Any]] = Field(description="version, digest, title, applied_at, by.")


class TierMembers(BaseModel):
    tier: str
    threshold: float | None
    members: int
    share: float
    boosted: int = Field(description="Members holding it by a temporary upgrade.")
    in_grace: int
    perks: list[str]


class TiersPublic(BaseModel):
    """Members per tier now, lowest tier first."""

    program: str
    tiers: list[TierMembers]


class CouponPublic(BaseModel):
    """An issued code (``replayed``: the key issued it before)."""

    model_config = ConfigDict(extra="allow")

    code: str
    coupon_id: str
    user_id: str
    kind: str
    amount: float
    currency: str
    valid_from: datetime
    valid_until: datetime
    status: str
    replayed: bool


def _ledger_key(request: Request, key: KeyInfo, given: str | None) -> str:
    if given:
        return given
    header = request.headers.get("Idempotency-Key")
    if header:
        return f"api:{key.key_id}:{header}"
    raise Problem(
        422,
        "A ledger write needs a key so that a retry never books twice; put one in the body "
        '("key": "order-1001:points") or send an Idempotency-Key header.',
        [{"path": "key", "message": "is missing (and there is no Idempotency-Key header)"}],
    )


async def _write(request: Request, call: Any, program: str = "default") -> JsonResponse:
    """Run the ledger write ``call(ws)``; a program other than ``default`` must have been
    applied (404: a typo would open accounts in a program nobody runs)."""
    from liucun.loyalty import CouponRefused, IdempotencyConflict, InsufficientPoints

    def run() -> Any:
        if program != "default":
            _program(request, program)
        try:
            return plain(call(service(request).ws))
        except (InsufficientPoints, IdempotencyConflict, CouponRefused) as exc:
            raise refused(exc, 409) from None

    return JsonResponse(await run_in_threadpool(run), status_code=201)


@api.get(
    "/accounts/{user_id}",
    response_model=AccountPublic,
    responses=errors(404, 422, 503),
    summary="A customer's loyalty account",
)
async def get_account(
    request: Request, user_id: UserId, key: ReadKey, program: ProgramQuery = "default"
) -> JsonResponse:
    """Tier, spendable and pending points, growth value and the points that expire
    (soonest first), as :func:`liucun.loyalty.account` reads them."""
    acct = await run_in_threadpool(_account, request, user_id, program)
    expiring = sorted(
        (lot for lot in acct.lots if lot.expires_at is not None),
        key=lambda lot: lot.expires_at,
    )
    body = {k: v for k, v in acct.to_dict().items() if k not in ("entries", "lots")}
    body["expiring"] = [
        {"points": lot.remaining, "expires_at": lot.expires_at.isoformat(), "key": lot.key}
        for lot in expiring
    ]
    return JsonResponse(body)


def _account(request: Request, user_id: str, program: str) -> Any:
    from liucun import loyalty

    acct = loyalty.account(service(request).ws, user_id, program)
    if acct.version == 0 and not acct.entries:
        raise not_found(
            f"customer {user_id!r} has no account in loyalty program {program!r}; an account "
            f"opens with its first write (POST /v1/loyalty/accounts/{user_id}/accrue)"
        )
    return acct


@api.get(
    "/accounts/{user_id}/ledger",
    response_model=Page,
    responses=errors(404, 422, 503),
    summary="A customer's ledger entries, oldest first",
)
async def get_ledger(
    request: Request,
    user_id: UserId,
    key: ReadKey,
    program: ProgramQuery = "default",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JsonResponse:
    """Each transaction on the account (kind, signed points and growth, balance after,
    key, reason), oldest first; the ledger is append-only, so pages never shift."""
    acct = await run_in_threadpool(_account, request, user_id, program)
    return JsonResponse(offset_page(acct.entries, limit, cursor))


@api.post(
    "/accounts/{user_id}/accrue",
    status_code=201,
    response_model=PostingPublic,
    responses=errors(404, 503, *WRITE_ERRORS),
    summary="Add points to a customer's account",
)
async def post_accrue(
    request: Request, user_id: UserId, body: AccrueBody, key: WriteKey
) -> JsonResponse:
    """Award points (:func:`liucun.loyalty.award`), optionally pending for some days or
    expiring at a time; the account opens on first use."""
    from datetime import timedelta

    from liucun import loyalty

    ledger_key = _ledger_key(request, key, body.key)
    return await _write(
        request,
        lambda ws: loyalty.award(
            ws,
            user_id,
            body.points,
            key=ledger_key,
            reason=body.reason,
            program=body.program,
            expires_at=body.expires_at,
            available_at=timedelta(days=body.pending_days) if body.pending_days else None,
        ),
        body.program,
    )


@api.post(
    "/accounts/{user_id}/redeem",
    status_code=201,
    response_model=PostingPublic,
    responses=errors(404, 503, *WRITE_ERRORS),
    summary="Spend points of a customer's account",
)
async def post_redeem(
    request: Request, user_id: UserId, body: RedeemBody, key: WriteKey
) -> JsonResponse:
    """Redeem available points, those expiring first first
    (:func:`liucun.loyalty.redeem`); fewer available is a 409 and nothing is written."""
    from liucun import loyalty

    ledger_key = _ledger_key(request, key, body.key)
    return await _write(
        request,
        lambda ws: loyalty.redeem(
            ws, user_id, body.points, key=ledger_key, reason=body.reason, program=body.program
        ),
        body.program,
    )


@api.post(
    "/accounts/{user_id}/adjust",
    status_code=201,
    response_model=PostingPublic,
    responses=errors(404, 503, *WRITE_ERRORS),
    summary="Correct a customer's balance",
)
async def post_adjust(
    request: Request, user_id: UserId, body: AdjustBody, key: WriteKey
) -> JsonResponse:
    """A positive or negative adjustment with a reason (:func:`liucun.loyalty.adjust`);
    below zero only where the program allows negative balances (else 409)."""
    from liucun import loyalty

    ledger_key = _ledger_key(request, key, body.key)
    return await _write(
        request,
        lambda ws: loyalty.adjust(
            ws, user_id, body.points, key=ledger_key, reason=body.reason, program=body.program
        ),
        body.program,
    )


def _program(request: Request, program: str) -> Any:
    from liucun import loyalty

    ws = service(request).ws
    if not loyalty.program_versions(ws, program):
        raise not_found(
            f"no loyalty program {program!r} has been applied to this workspace; apply one "
            "with `liucun loyalty program apply FILE.yaml`"
        )
    return loyalty.active_program(ws, program)


@api.get(
    "/programs/{program}",
    response_model=ProgramPublic,
    responses=errors(404, 422, 503),
    summary="The loyalty program in force and its versions",
)
async def get_program(request: Request, program: ProgramName, key: ReadKey) -> JsonResponse:
    """The program's rules as applied (tiers, earning, coupons, benefits) and every
    applied version (without its source text)."""
    from liucun import loyalty

    def read() -> dict[str, Any]:
        prog = _program(request, program)
        versions = loyalty.program_versions(service(request).ws, program)
        return {
            "program": program,
            "version": versions[-1]["version"],
            "definition": prog.model_dump(mode="json"),
            "versions": [plain({k: v for k, v in r.items() if k != "source"}) for r in versions],
        }

    return JsonResponse(await run_in_threadpool(read))


@api.get(
    "/programs/{program}/tiers",
    response_model=TiersPublic,
    responses=errors(404, 422, 503),
    summary="Members per tier now",
)
async def get_tiers(request: Request, program: ProgramName, key: ReadKey) -> JsonResponse:
    """Each tier of the program, lowest first, with its growth threshold and perks, and
    the members holding it now (:func:`liucun.loyalty.tier_distribution`)."""
    from liucun import loyalty

    def read() -> dict[str, Any]:
        prog = _program(request, program)
        perks = {t.name: list(t.perks) for t in prog.tiers}
        rows = records(loyalty.tier_distribution(service(request).ws, program))
        for row in rows:
            row["perks"] = perks.get(row["tier"], [])
        return {"program": program, "tiers": rows}

    return JsonResponse(await run_in_threadpool(read))


@api.post(
    "/coupons",
    status_code=201,
    response_model=CouponPublic,
    responses=errors(404, 503, *WRITE_ERRORS),
    summary="Issue a coupon code to a customer",
)
async def post_coupon(request: Request, body: CouponBody, key: WriteKey) -> JsonResponse:
    """A new single-use code of a coupon of the program in force
    (:func:`liucun.loyalty.issue_coupon`); the per-customer limit, the value cap and
    the budgets are checked (a refusal is a 409 and nothing is issued)."""
    from liucun import loyalty

    ledger_key = _ledger_key(request, key, body.key)

    def issue(ws: Any) -> Any:
        prog = _program(request, "default")
        ids = sorted(c.id for c in prog.coupons)
        if body.coupon_id not in ids:
            raise not_found(
                f"the program in force has no coupon {body.coupon_id!r}; its coupons are "
                f"{', '.join(ids) if ids else 'none'}"
            )
        return loyalty.issue_coupon(ws, body.coupon_id, body.user_id, key=ledger_key)

    return await _write(request, issue)
