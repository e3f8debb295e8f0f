"""Published parameter values the BTYD tests pin to (sources in each comment)."""

#: Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW 39 weeks.
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
#: Fader, Hardie & Lee (2005), Pareto/NBD on the same data.
PARETO_PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
#: BTYDplus (Platzer) ``mbgcnbd.EstimateParameters(k=1)`` on CDNOW; no paper value exists.
MBGNBD_BTYDPLUS = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
#: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", 946 repeat customers.
GAMMA_GAMMA_PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
#: Fader, Hardie & Shang (2010), donations data.
BGBB_PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


def three_sig(value: float) -> float:
    """Round to 3 significant figures, the precision the papers print."""
    return float(f"{value:.3g}")
