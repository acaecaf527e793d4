"""Report figures are readable: every axis labelled, no legend over the data, the curves the
captions talk about visible. The checks (tests/report/_readability.py) look at the artists
matplotlib laid out, in display coordinates."""

import importlib
import inspect

import numpy as np
import pytest
import torch
from matplotlib.collections import TriMesh
from torch.distributions import Beta, Dirichlet, Normal, StudentT

from bayesdl.datasets.images import load_digits_images, split_images
from bayesdl.report import SECTIONS, Section
from bayesdl.viz import bdl, distributions, linear_model, mixtures
from tests.report._readability import bad_plurals, legends_over_data, problems, unlabelled_axes

RNG = np.random.default_rng(0)


def test_vb_pruning_legend_leaves_every_bar_visible():
    X = RNG.normal(size=(90, 2)) + np.repeat([[0, 0], [8, 8], [0, 10]], 30, axis=0)
    weights = np.array([0, 0, 0, 0.32, 0.35, 0, 0, 0.33, 0, 0]) + 1e-4
    means = np.zeros((10, 2))
    covs = np.tile(np.eye(2), (10, 1, 1))
    assert problems(mixtures.vb_pruning(X, weights, means, covs, 0.01)) == []


def test_ab_and_density_legends_stay_off_the_curves_and_the_student_t_shows():
    fig = distributions.plot_ab_posteriors(["A", "B"], [Beta(121.0, 881.0), Beta(136.0, 866.0)],
                                           np.array([0.16, 0.84]))
    assert problems(fig) == []
    x = np.concatenate([RNG.normal(55, 6, 100), RNG.normal(80, 6, 170)])
    # a Student-t that coincides with the Normal: drawn first, wider, so it is not hidden
    fits = {"Student-t": StudentT(torch.tensor(300.0), torch.tensor(x.mean()),
                                  torch.tensor(x.std())),
            "Normal": Normal(torch.tensor(x.mean()), torch.tensor(x.std()))}
    fig = distributions.plot_density_fits(x, fits, "minutes")
    assert problems(fig) == []
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["Student-t"].get_linewidth() > lines["Normal"].get_linewidth() + 1
    assert lines["Student-t"].get_zorder() <= lines["Normal"].get_zorder()


def test_dirichlet_panels_share_one_meaningful_colour_scale():
    fig = distributions.plot_dirichlet_simplex(
        [Dirichlet(torch.full((3,), a, dtype=torch.float64)) for a in (0.1, 1.0, 10.0)], 40)
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1
    meshes = [c for ax in fig.axes for c in ax.collections if isinstance(c, TriMesh)]
    assert len(meshes) == 3
    assert len({m.get_clim() for m in meshes}) == 1
    # the uniform Dirichlet(1, 1, 1) has density 2 = 1 / area of the simplex everywhere
    uniform = meshes[1].get_array()
    np.testing.assert_allclose(uniform, np.log(2.0), atol=1e-12)
    assert meshes[0].get_clim()[0] < np.log(2.0) < meshes[0].get_clim()[1]


def test_em_panels_have_axis_labels():
    X = RNG.normal(size=(50, 2))
    snap = (np.array([[-1.0, 1.0], [1.0, -1.0]]), np.tile(np.eye(2), (2, 1, 1)),
            np.full((50, 2), 0.5))
    fig = mixtures.em_steps(X, [snap, snap], ["initialisation", "L = 1"],
                            xlabel="duration", ylabel="waiting")
    assert unlabelled_axes(fig) == [] and problems(fig) == []
    assert problems(mixtures.em_steps(X, [snap], ["initialisation"])) == []


def test_sequential_learning_says_1_point_and_labels_every_axis():
    snaps = [dict(n=n, mean=np.zeros(2), cov=np.eye(2) / (n + 1), x=RNG.uniform(-1, 1, n),
                  t=RNG.uniform(-1, 1, n), samples=RNG.normal(size=(3, 2))) for n in (0, 1, 2)]
    fig = linear_model.sequential_learning_figure(snaps, (-0.3, 0.5))
    titles = [ax.get_title() for ax in fig.axes]
    assert "posterior after 1 point" in titles and "posterior after 2 points" in titles
    assert bad_plurals(fig) == [] and unlabelled_axes(fig) == []


def test_uncertainty_bands_show_the_total_band_above_the_aleatoric_one():
    grid = np.linspace(-6, 6, 100)
    alea = np.full_like(grid, 0.04)
    epis = 0.01 * grid**2  # total exceeds aleatoric by little near 0, by much far out
    x = RNG.uniform(-4, 4, 50)
    fig = bdl.uncertainty_bands(x, np.sin(x), grid, {"a": (np.sin(grid), alea, epis),
                                                     "b": (np.sin(grid), alea, epis)},
                                noise_sd=np.full_like(grid, 0.2))
    assert problems(fig) == []
    top = fig.axes[0]
    # the total band is an outline drawn over the filled aleatoric band, so it stays visible
    total = [line for line in top.get_lines() if line.get_label() == "total (2 sd)"]
    fill = [c for c in top.collections if c.get_label() == "aleatoric (2 sd)"]
    assert len(total) == 1 and len(fill) == 1
    assert total[0].get_zorder() > fill[0].get_zorder()
    np.testing.assert_allclose(total[0].get_ydata(), np.sin(grid) - 2 * np.sqrt(alea + epis))
    assert any(line.get_label() == "true noise sd" for line in fig.axes[2].get_lines())


def test_the_checks_catch_a_legend_over_data_and_a_missing_label():
    from bayesdl.viz import new_figure

    fig, axes = new_figure()
    x = np.linspace(0, 1, 50)
    axes[0, 0].plot(x, np.ones_like(x) * 0.5, label="flat")
    axes[0, 0].legend(loc="center")
    assert legends_over_data(fig) and unlabelled_axes(fig)


@pytest.mark.slow
@pytest.mark.parametrize("name", SECTIONS)
def test_every_report_figure_is_readable(name):
    module = importlib.import_module(f"bayesdl.report.sections.{name}")
    extra = {}
    if "previous" in inspect.signature(module.build).parameters:  # the cross-model sections
        X, y = load_digits_images()
        extra["previous"] = [Section("real", samples={"digits": X[split_images(X, y)[0]]})]
    section = module.build(quick=True, seed=0, **extra)
    for caption, fig in section.figures:
        assert problems(fig) == [], caption
