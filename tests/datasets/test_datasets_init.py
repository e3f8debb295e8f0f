"""The public surface of ``liucun.datasets``."""

import liucun.datasets as ds


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` lists every public name once, sorted (STYLE: httpx)."""
    assert ds.__all__ == sorted(ds.__all__)
    assert set(ds.__all__) == {
        "CdnowData",
        "cdnow_rft",
        "datasets_dir",
        "load_cdnow",
        "load_donations",
    }
    assert all(hasattr(ds, name) for name in ds.__all__)
