"""Cox driver analysis: a hand-coded partial likelihood, recovery of a known Cox model,
stratification, and the notes for awkward covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from liucun.core import InvalidInput
from liucun.models.drivers import Covariate, cox_drivers, sentence

# ---- the partial likelihood by hand -----------------------------------------------------

TINY = pd.DataFrame(
    {
        "duration_days": [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0, 8.0],
        "churned": [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1],
        "x1": [0.5, 1.2, -0.3, 0.8, 0.1, -1.0, 0.4, -0.6, 0.9, -0.2, -1.4, 0.3],
        "x2": [1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0],
    }
)


def _log_partial_likelihood(beta: np.ndarray, ties: str) -> float:
    """Cox (1972) with Breslow (1974) or Efron (1977) handling of tied churn times."""
    t = TINY["duration_days"].to_numpy()
    d = TINY["churned"].to_numpy() == 1
    eta = TINY[["x1", "x2"]].to_numpy(float) @ beta
    total = 0.0
    for time in np.unique(t[d]):
        dead = d & (t == time)
        at_risk = np.exp(eta[t >= time]).sum()
        tied = np.exp(eta[dead]).sum()
        k = int(dead.sum())
        total += eta[dead].sum()
        if ties == "breslow":
            total -= k * np.log(at_risk)
        else:
            total -= sum(np.log(at_risk - (ell / k) * tied) for ell in range(k))
    return float(total)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_phreg_maximises_the_hand_coded_partial_likelihood(ties: str) -> None:
    best = optimize.minimize(
        lambda b: -_log_partial_likelihood(b, ties), np.zeros(2), method="BFGS", tol=1e-12
    )
    got = cox_drivers(TINY, ["x1", Covariate("x2", "x2", kind="flag")], ties=ties)  # type: ignore[arg-type]
    coef = got.hazard_ratios.set_index("term")["coef"]
    np.testing.assert_allclose([coef["x1"], coef["x2"]], best.x, atol=1e-5)
    assert got.log_likelihood == pytest.approx(-best.fun, abs=1e-8)
    assert (got.customers, got.churned, got.ties) == (12, 8, ties)


# ---- recovering a known model -----------------------------------------------------------

TRUE = {"x1": 0.25, "flag": -0.5, "group[b]": 0.3, "group[c]": -0.4}


def _known_cox(seed: int, n: int = 3000) -> pd.DataFrame:
    """Exponential baseline 0.01/day, hazard × exp(η); independent uniform censoring;
    times in whole days, as churn is usually counted (Efron handles the ties)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n)
    flag = rng.random(n) < 0.3
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    eta = TRUE["x1"] * x1 + TRUE["flag"] * flag
    eta += np.select([group == "b", group == "c"], [TRUE["group[b]"], TRUE["group[c]"]], 0.0)
    t = rng.exponential(1 / (0.01 * np.exp(eta)))
    c = rng.uniform(0, 150, n)
    return pd.DataFrame(
        {
            "duration_days": np.ceil(np.minimum(t, c)),
            "churned": t <= c,
            "x1": x1,
            "flag": flag,
            "group": group,
        }
    )


def test_recovers_the_log_hazard_ratios_of_a_known_model() -> None:
    data = _known_cox(seed=1)
    got = cox_drivers(data, ["x1", "flag", "group"])
    table = got.hazard_ratios.set_index("term")
    assert set(table.index) == set(TRUE)
    for term, beta in TRUE.items():
        low, high = np.log(table.at[term, "ci_low"]), np.log(table.at[term, "ci_high"])
        assert low < beta < high, term
        assert table.at[term, "coef"] == pytest.approx(beta, abs=0.1)
        assert table.at[term, "significant"]
    assert table.at["group[b]", "reference"] == "a"  # the most common level
    # sorted by the size of the effect (true sizes: flag 0.5, c 0.4, b 0.3, x1 0.25)
    effect = np.abs(np.log(got.hazard_ratios["hazard_ratio"].to_numpy()))
    assert np.all(np.diff(effect) <= 0)
    assert got.hazard_ratios["term"].iloc[0] == "flag"
    assert got.notes == ()


def test_sentences_follow_the_estimates() -> None:
    data = _known_cox(seed=1)
    got = cox_drivers(
        data,
        [
            Covariate("x1", "a score 2 points higher", per=2.0),
            Covariate("flag", "a late first delivery", kind="flag"),
            Covariate("group", "segment", kind="categorical"),
        ],
    )
    table = got.hazard_ratios.set_index("term")
    assert table.at["x1", "per"] == 2.0
    assert table.at["x1", "hazard_ratio"] == pytest.approx(np.exp(2 * table.at["x1", "coef"]))
    hr, low, high = table.loc["x1", ["hazard_ratio", "ci_low", "ci_high"]]
    assert table.at["x1", "sentence"] == (
        f"A score 2 points higher raises the churn hazard by {100 * (hr - 1):.0f} % "
        f"[{100 * (low - 1):.0f} %, {100 * (high - 1):.0f} %]"
    )
    assert table.at["flag", "sentence"].startswith(  # a binary covariate: with vs without
        "Customers with a late first delivery vs without have a "
    )
    assert " lower churn hazard [" in table.at["flag", "sentence"]
    assert table.at["group[c]", "sentence"].startswith("Segment c (vs a) lowers")


def test_sentence_wording() -> None:
    assert sentence("A late delivery", 1.38, 1.25, 1.52, 0.001) == (
        "A late delivery raises the churn hazard by 38 % [25 %, 52 %]"
    )
    assert sentence("A coupon", 0.8, 0.7, 0.95, 0.01) == (
        "A coupon lowers the churn hazard by 20 % [5.0 %, 30 %]"
    )
    assert sentence("Web", 1.03, 0.95, 1.12, 0.41) == (
        "Web has no clear effect on the churn hazard (3.0 % [-5.0 %, 12 %], p = 0.41)"
    )


def test_standardized_covariates_are_per_standard_deviation() -> None:
    data = _known_cox(seed=1)
    data["x1"] *= 10  # a standard deviation of 10
    got = cox_drivers(data, ["x1", "flag"], standardize=True).hazard_ratios.set_index("term")
    sd = float(np.std(data["x1"]))
    assert got.at["x1", "per"] == pytest.approx(sd)
    assert got.at["x1", "hazard_ratio"] == pytest.approx(np.exp(got.at["x1", "coef"] * sd))
    assert got.at["x1", "sentence"].startswith(f"X1 one standard deviation ({sd:.3g}) higher")


def test_stratification_removes_the_confounding_of_a_baseline() -> None:
    """Two strata with 10× different baseline hazards; x1 is higher in the risky one."""
    rng = np.random.default_rng(5)
    n = 3000
    stratum = rng.random(n) < 0.5
    x1 = rng.normal(np.where(stratum, 1.0, 0.0), 1.0)
    t = rng.exponential(1 / (np.where(stratum, 0.05, 0.005) * np.exp(0.3 * x1)))
    c = rng.uniform(0, 200, n)
    data = pd.DataFrame(
        {
            "duration_days": np.ceil(np.minimum(t, c)),
            "churned": t <= c,
            "x1": x1,
            "tier": np.where(stratum, "risky", "safe"),
        }
    )
    plain = cox_drivers(data, ["x1"]).hazard_ratios.set_index("term")
    strat = cox_drivers(data, ["x1", "tier"], strata="tier")
    table = strat.hazard_ratios.set_index("term")
    assert np.log(plain.at["x1", "ci_low"]) > 0.4  # confounded by the stratum
    assert np.log(table.at["x1", "ci_low"]) < 0.3 < np.log(table.at["x1", "ci_high"])
    assert strat.strata == "tier"
    assert "tier is the stratum, so it is not also a covariate" in strat.notes


# ---- awkward covariates -----------------------------------------------------------------


def test_constant_collinear_rare_and_missing_covariates_are_noted() -> None:
    data = _known_cox(seed=2, n=1500)
    rng = np.random.default_rng(0)
    data["constant"] = 1.0
    data["double"] = 2 * data["x1"] + data["flag"]
    data["near"] = data["x1"] + rng.normal(0, 0.05, len(data))
    data["channel"] = np.where(np.arange(len(data)) < 5, "fax", "web")
    data.loc[:9, "group"] = None  # ten customers with no group -> level "missing"
    data["sparse"] = np.where(np.arange(len(data)) % 10 == 0, np.nan, rng.normal(size=len(data)))
    data["gappy"] = np.where(np.arange(len(data)) % 10 == 1, np.nan, rng.normal(size=len(data)))
    got = cox_drivers(
        data,
        [
            "x1",
            "flag",
            "constant",
            "double",
            "near",
            "channel",
            Covariate("group", "group", kind="categorical"),
            "sparse",
            Covariate("gappy", "gappy", fill="mean"),
        ],
        min_level_customers=20,
    )
    notes = "\n".join(got.notes)
    assert "constant was left out: it has the same value for every customer" in notes
    assert "double was left out: it is a linear combination of x1, flag" in notes
    assert "near and x1 are highly correlated" in notes
    assert "level(s) fax have fewer than 20 customers" in notes
    assert "channel was left out: every customer has the same value (other)" not in notes
    assert "group: level(s) missing have fewer than 20 customers each" in notes
    assert "sparse: 150 customer(s) without a value were left out" in notes
    assert got.customers == 1350
    terms = set(got.hazard_ratios["term"])
    assert {"x1", "flag", "near", "channel[other]", "sparse", "gappy"} <= terms
    assert not {"constant", "double"} & terms


def test_separation_is_reported_not_hidden() -> None:
    rng = np.random.default_rng(0)
    t = np.ceil(rng.exponential(10, 300) * 10)
    first = np.zeros(300, dtype=bool)
    first[np.argsort(t)[:10]] = True  # the ten earliest churners, and only they
    data = pd.DataFrame({"duration_days": t, "churned": True, "x": rng.normal(size=300)})
    data["first"] = first
    got = cox_drivers(data, ["x", "first"])
    table = got.hazard_ratios.set_index("term")
    assert np.isnan(table.at["first", "hazard_ratio"])
    assert "cannot be estimated (separation" in table.at["first", "sentence"]
    assert any("first: the hazard ratio runs off towards ∞" in n for n in got.notes)
    assert list(got.hazard_ratios["term"])[-1] == "first"  # unidentified terms come last


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"covariates": ["nope"]}, "covariate 'nope' is not a column"),
        ({"duration": "when"}, "column 'when' is not in the data"),
        ({"covariates": []}, "no covariate to fit"),
        ({"covariates": ["constant"]}, "no covariate is left to fit"),
        ({"ties": "exact"}, "ties must be"),
        ({"confidence": 95}, "confidence"),
        ({"covariates": [Covariate("x1", per=0)]}, "per must be a positive number"),
    ],
)
def test_clear_errors(kwargs, match: str) -> None:  # type: ignore[no-untyped-def]
    data = _known_cox(seed=3, n=200)
    data["constant"] = 0.0
    args = {"covariates": ["x1"], **kwargs}
    with pytest.raises(InvalidInput, match=match):
        cox_drivers(data, **args)


def test_negative_durations_and_no_churn_are_refused() -> None:
    data = _known_cox(seed=3, n=200)
    with pytest.raises(InvalidInput, match="must be finite and non-negative"):
        cox_drivers(data.assign(duration_days=-1.0), ["x1"])
    with pytest.raises(InvalidInput, match="no customer churned"):
        cox_drivers(data.assign(churned=False), ["x1"])
