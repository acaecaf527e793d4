"""The bundled Mauna Loa CO2 monthly means against their source, statsmodels' weekly series."""

import numpy as np
import pytest


def test_bundled_co2_is_statsmodels_weekly_series_resampled_to_monthly_means():
    statsmodels = pytest.importorskip("statsmodels.datasets.co2")
    from bayesdl.datasets import load_co2
    co2 = load_co2()
    weekly = statsmodels.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().dropna()
    assert co2.data.shape == (len(monthly), 1) and co2.target_name == "co2"
    np.testing.assert_allclose(co2.target, monthly.to_numpy(), atol=5e-5)  # 4 decimals shipped
    assert co2.data[0, 0] == pytest.approx(1958 + 2.5 / 12, abs=1e-4)
