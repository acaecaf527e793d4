"""Trainer: exact resume after an interruption, early stopping, clipping, checkpoints, DDP."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bayesdl.nn import BayesLinear, GaussianPrior, MCDropout, elbo_loss, kl_divergence
from bayesdl.train import Trainer, load_checkpoint


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(n, generator=g)
    return X, y


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(BayesLinear(3, 16, sampling="flipout"), nn.ReLU(),
                         MCDropout(0.2, seed=seed), BayesLinear(16, 1))


def _elbo(model, batch, step):
    X, y = batch
    nll = nn.functional.mse_loss(model(X).squeeze(-1), y)
    return elbo_loss(nll, kl_divergence(model), step.n_train, step.batch_index, "blundell",
                     step.n_batches)


def _trainer(model, tmp_path, **kw):
    opts = dict(lr=0.01, max_epochs=6, batch_size=16, grad_clip=5.0, checkpoint_dir=tmp_path,
                scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, 0.5),
                progress=False, seed=3)
    opts.update(kw)
    return Trainer(model, opts.pop("loss_fn", _elbo), **opts)


def test_interrupted_and_resumed_run_reproduces_the_uninterrupted_weights(tmp_path):
    data = _data()
    full = _model(0)
    _trainer(full, tmp_path / "full").fit(data, data)

    calls = {"n": 0}

    def interrupted(model, batch, step):
        if step.epoch == 3 and step.batch_index == 2:
            raise KeyboardInterrupt  # the machine goes down mid-epoch
        calls["n"] += 1
        return _elbo(model, batch, step)

    with pytest.raises(KeyboardInterrupt):
        _trainer(_model(0), tmp_path / "run", loss_fn=interrupted).fit(data, data)
    _, meta = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["epoch"] == 2  # the last complete epoch was checkpointed

    resumed_model = _model(123)  # fresh process: different initial weights, same seed
    resumed = _trainer(resumed_model, tmp_path / "run", resume=True).fit(data, data)
    for (k, a), b in zip(full.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [h["epoch"] for h in resumed.history] == list(range(6))


def test_early_stopping_restores_the_best_weights(tmp_path):
    data = _data()
    values = iter([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8])
    model = _model(1)
    t = _trainer(model, None, patience=2, val_metric=lambda m, loader: next(values),
                 scheduler=None).fit(data, data)
    assert t.stopped_early and t.best_epoch == 2 and len(t.history) == 5
    reference = _model(1)
    _trainer(reference, None, max_epochs=3, scheduler=None,
             val_metric=lambda m, loader: 1.0).fit(data, data)
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_gradient_clipping_bounds_the_update():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    before = torch.cat([p.detach().clone().ravel() for p in model.parameters()])
    X, y = _data(16)

    def loss(m, batch, step):
        return 1e3 * ((m(batch[0]).squeeze(-1) - batch[1]) ** 2).mean()

    Trainer(model, loss, optimizer=lambda p: torch.optim.SGD(p, lr=1.0), max_epochs=1,
            batch_size=16, grad_clip=0.01, progress=False).fit((X, y))
    after = torch.cat([p.detach().ravel() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-5)


def test_checkpoint_is_safetensors_and_resume_needs_matching_settings(tmp_path):
    data = _data()
    _trainer(_model(0), tmp_path, max_epochs=2).fit(data)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["last.safetensors"]  # no temporary files left behind
    tensors = load_file(tmp_path / "last.safetensors")
    assert any(k.startswith("model.") for k in tensors) and "rng.cpu.0" in tensors
    with pytest.raises(ValueError, match="same settings"):
        _trainer(_model(0), tmp_path, resume=True, seed=4).fit(data)
    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a bayesdl training checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")
    raw = (tmp_path / "last.safetensors").read_bytes()
    (tmp_path / "last.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated|corrupt"):
        _trainer(_model(0), tmp_path, resume=True).fit(data)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        Trainer(nn.Linear(1, 1), _elbo, resume=True)
    with pytest.raises(ValueError, match="amp=True needs a CUDA"):
        Trainer(nn.Linear(1, 1), _elbo, amp=True, device="cpu", progress=False).fit(_data())


def _ddp_worker(rank, world, tmp):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=world)
    try:
        model = _model(0)
        t = _trainer(model, f"{tmp}/ckpt", max_epochs=3).fit(_data())
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  f"{tmp}/rank{rank}.safetensors")
        with open(f"{tmp}/history{rank}.json", "w") as f:
            json.dump(t.history, f)
        # streams declaring their sizes: n_train sums the ranks' rows (20 + 25 in 2 batches
        # each); unequal batch counts are refused on every rank before any step
        seen, refused = [], []
        _trainer(_model(0), None, max_epochs=1, loss_fn=lambda m, b, step: (
            seen.append(step.n_train) or _elbo(m, b, step))).fit(
                _SizedStream(_data(20 + 5 * rank, seed=rank), 10 + 3 * rank))
        try:
            _trainer(_model(0), None, max_epochs=1).fit(
                _SizedStream(_data(20), 10, n_batches=2 + rank, n_rows=20))
        except ValueError as e:
            refused.append(str(e))
        with open(f"{tmp}/streams{rank}.json", "w") as f:
            json.dump({"n_train": seen, "refused": refused}, f)
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_ddp_trains_the_same_model_on_every_rank(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    w0 = load_file(tmp_path / "rank0.safetensors")
    w1 = load_file(tmp_path / "rank1.safetensors")
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    history = json.loads((tmp_path / "history0.json").read_text())
    assert history == json.loads((tmp_path / "history1.json").read_text())
    assert history[-1]["loss"] < history[0]["loss"]
    # training moved the weights away from the common initialisation
    init = _model(0).state_dict()
    assert not torch.equal(init["0.weight_mu"], w0["0.weight_mu"])
    tensors, meta = load_checkpoint(tmp_path / "ckpt" / "last.safetensors")
    assert meta["world_size"] == 2 and "rng.cpu.1" in tensors
    for rank in (0, 1):
        streams = json.loads((tmp_path / f"streams{rank}.json").read_text())
        assert streams["n_train"] == [45, 45]
        assert len(streams["refused"]) == 1 and "different numbers of batches (2 to 3)" in \
            streams["refused"][0]


_TORCHRUN_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from safetensors.torch import save_file
from tests.train.test_trainer import _data, _model, _trainer
import torch.distributed as dist
torch.set_num_threads(1)
model = _model(0)
_trainer(model, None, max_epochs=2).fit(_data())  # the Trainer initialises the process group
save_file({{k: v.contiguous() for k, v in model.state_dict().items()}},
          f"{out}/rank{{dist.get_rank()}}.safetensors")
dist.destroy_process_group()
"""


def test_torchrun_launch_initialises_gloo_and_agrees_across_ranks(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "train.py"
    script.write_text(_TORCHRUN_SCRIPT.format(root=root, out=str(tmp_path)))
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", str(script)], check=True, cwd=root, timeout=300)
    w0 = load_file(tmp_path / "rank0.safetensors")
    w1 = load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_step_reports_the_training_set_size_not_the_batch_size():
    # N = 50 > B = 20: 3 batches per epoch (20, 20, 10); n_train must stay N, which is what
    # elbo_loss divides the KL by (the batch size would weight the KL N/B times too much)
    seen = []

    def record(model, batch, step):
        seen.append((step, len(batch[0])))
        return model(batch[0]).pow(2).mean()

    torch.manual_seed(0)
    X, y = _data(50)
    val_X, val_y = _data(7, seed=1)
    Trainer(nn.Linear(3, 1), record, max_epochs=2, batch_size=20, progress=False,
            shuffle=False).fit((X, y), (val_X, val_y))
    train_steps = [(s.epoch, s.batch_index, s.n_batches, s.n_train, b) for s, b in seen
                   if s.epoch >= 0]
    assert train_steps == [(e, i, 3, 50, b) for e in (0, 1) for i, b in enumerate((20, 20, 10))]
    # the validation pass (epoch -1) also weights its KL by the training set size
    val_steps = [(s.epoch, s.batch_index, s.n_batches, s.n_train, b) for s, b in seen
                 if s.epoch < 0]
    assert val_steps == [(-1, 0, 1, 50, 7)] * 2


@pytest.mark.parametrize("batch_size, epochs, mc_samples", [(20, 30, 100), (1000, 600, 20)])
def test_bayes_by_backprop_reaches_the_exact_mean_field_posterior(batch_size, epochs,
                                                                  mc_samples):
    """Conjugate linear-Gaussian model y = X w + e, e ~ N(0, s^2) known, w ~ N(0, I).

    The posterior is N(m, S) with S^-1 = I + X^T X / s^2 and m = S X^T y / s^2 (PRML eq.
    3.53-3.54). The best factorised Gaussian q(w) = prod_j N(mu_j, v_j) (the KL(q||p) that
    Bayes by Backprop minimises) has mu = m and v_j = 1 / (S^-1)_jj (PRML eq. 10.12-10.13,
    Bishop's mean-field treatment of a Gaussian). Minibatches of 20 out of N = 1000 reach it
    only if the KL is weighted by 1 / N (not 1 / B): that is what ``Step.n_train`` carries.
    """
    N, D, noise = 1000, 3, 0.5
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, D, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0.5, 2.0],
                                                                            dtype=torch.float64)
    X[:, 1] += 0.6 * X[:, 0]  # correlated inputs: the posterior is not factorised
    y = X @ torch.tensor([0.7, -1.2, 0.3], dtype=torch.float64) + noise * torch.randn(
        N, generator=g, dtype=torch.float64)
    precision = torch.eye(D, dtype=torch.float64) + X.T @ X / noise ** 2  # (D, D): S^-1
    m = torch.linalg.solve(precision, X.T @ y / noise ** 2)  # (D,)
    v = 1 / torch.diagonal(precision)  # (D,)

    def neg_elbo(model, batch, step):
        xb, yb = batch
        # mc_samples local-reparameterisation draws per example (lower-variance gradient)
        f = model(xb.repeat(mc_samples, 1)).view(mc_samples, -1)  # (S, B)
        nll = 0.5 * ((yb - f) / noise).pow(2).mean() + 0.5 * math.log(2 * math.pi * noise ** 2)
        return elbo_loss(nll, kl_divergence(model), step.n_train)

    torch.manual_seed(0)
    layer = BayesLinear(D, 1, bias=False, prior=GaussianPrior(1.0), sampling="local").double()
    decay = 1e-3 ** (1 / epochs)  # the learning rate falls from 5e-2 to 5e-5
    Trainer(layer, neg_elbo, optimizer=lambda p: torch.optim.Adam(p, lr=5e-2),
            scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, decay),
            max_epochs=epochs, batch_size=batch_size, seed=0, progress=False,
            device="cpu").fit((X, y))
    torch.testing.assert_close(layer.posterior_mean("weight")[0], m, rtol=0, atol=1e-3)
    torch.testing.assert_close(layer.posterior_std("weight")[0] ** 2, v, rtol=0.04, atol=0)


def test_best_weights_are_restored_also_when_max_epochs_ends_the_run():
    # patience 10 is never reached in 5 epochs; the validation metric is best after epoch 1,
    # so the weights of epoch 1 come back (early stopping on a budget that runs out first)
    scores = iter([3.0, 1.0, 2.0, 4.0, 5.0])
    snapshots = []

    def metric(model, loader):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    X, y = _data(40)
    t = Trainer(model, lambda m, b, s: (m(b[0]).squeeze(-1) - b[1]).pow(2).mean(), lr=0.1,
                max_epochs=5, batch_size=8, patience=10, val_metric=metric,
                progress=False).fit((X, y), (X, y))
    assert not t.stopped_early and t.best_epoch == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k]) and not torch.equal(v, snapshots[-1][k])


# -- step functions: several optimisers in the one loop --------------------------------------
class _TwoPlayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)


def _two_player_step(model, batch, step, optimizers):
    X, y = batch
    noise = step.randn(len(X), 3)  # (B, 3)
    loss_a = ((model.a(X + 0.1 * noise).squeeze(-1) - y) ** 2).mean()
    optimizers["a"].zero_grad()
    loss_a.backward()
    optimizers["a"].step()
    logged = {"loss_a": loss_a.item()}
    if step.iteration % 2 == 1:  # b learns every second batch, from a's detached output
        loss_b = ((model.b(X).squeeze(-1) - model.a(X).squeeze(-1).detach()) ** 2).mean()
        optimizers["b"].zero_grad()
        loss_b.backward()
        optimizers["b"].step()
        logged["loss_b"] = loss_b.item()
    return logged


def _two_player_trainer(tmp_path, **kw):
    opts = dict(step_fn=_two_player_step, max_epochs=4, batch_size=16, progress=False, seed=5,
                optimizers={"a": lambda m: torch.optim.Adam(m.a.parameters(), lr=0.05),
                            "b": lambda m: torch.optim.SGD(m.b.parameters(), lr=0.05,
                                                           momentum=0.9)},
                scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, 0.7),
                checkpoint_dir=tmp_path)
    opts.update(kw)
    torch.manual_seed(0)
    model = _TwoPlayers()
    return model, Trainer(model, **opts)


def test_step_function_resumes_every_optimiser_exactly_and_logs_each_loss(tmp_path):
    data = _data(80)  # 5 batches per epoch: b steps on batches 1, 3 of epoch 0, ...
    full, trainer = _two_player_trainer(tmp_path / "full")
    trainer.fit(data)
    assert all(h.keys() == {"epoch", "loss_a", "loss_b"} for h in trainer.history)

    def interrupted(model, batch, step, optimizers):
        if step.epoch == 2 and step.batch_index == 3:
            raise KeyboardInterrupt
        return _two_player_step(model, batch, step, optimizers)

    with pytest.raises(KeyboardInterrupt):
        _two_player_trainer(tmp_path / "run", step_fn=interrupted)[1].fit(data)
    tensors, meta = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert set(meta["optimizer"]) == {"a", "b"} and "optim.b.0.momentum_buffer" in tensors
    resumed, trainer2 = _two_player_trainer(tmp_path / "run", resume=True)
    trainer2.fit(data)
    for (k, v), w in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    assert trainer2.history == trainer.history

    # the logged means against a naive re-run of epoch 0 from the same start
    torch.manual_seed(0)
    model = _TwoPlayers()
    opts = {"a": torch.optim.Adam(model.a.parameters(), lr=0.05),
            "b": torch.optim.SGD(model.b.parameters(), lr=0.05, momentum=0.9)}
    order = torch.randperm(80, generator=torch.Generator().manual_seed(5)).tolist()
    logs = []
    for b in range(5):
        idx = order[16 * b:16 * (b + 1)]
        logs.append(_two_player_step(model, (data[0][idx], data[1][idx]),
                                     _step(b, seed=5), opts))
    assert trainer.history[0]["loss_a"] == pytest.approx(np.mean([g["loss_a"] for g in logs]))
    assert trainer.history[0]["loss_b"] == pytest.approx(
        np.mean([g["loss_b"] for g in logs if "loss_b" in g]))


def _step(b, seed, epoch=0):
    from bayesdl.train import Step
    return Step(epoch, b, 5, 80, seed)


def test_step_noise_of_two_ranks_interleaves_to_the_one_process_draw():
    from bayesdl.train import Step
    one = Step(3, 2, 5, 80, seed=7).randn(8, 4)  # (8, 4): the global batch in one process
    ranks = [Step(3, 2, 5, 80, seed=7, rank=r, world_size=2).randn(4, 4) for r in (0, 1)]
    torch.testing.assert_close(one[0::2], ranks[0], rtol=0, atol=0)
    torch.testing.assert_close(one[1::2], ranks[1], rtol=0, atol=0)
    assert not torch.equal(one, Step(3, 3, 5, 80, seed=7).randn(8, 4))  # a new batch, new noise


def test_step_function_settings_are_checked():
    opt = {"a": lambda m: torch.optim.SGD(m.parameters(), lr=0.1)}
    with pytest.raises(ValueError, match="either loss_fn"):
        Trainer(nn.Linear(1, 1), _elbo, step_fn=_two_player_step, optimizers=opt)
    with pytest.raises(ValueError, match="step_fn needs optimizers"):
        Trainer(nn.Linear(1, 1), step_fn=_two_player_step)
    with pytest.raises(ValueError, match="identifiers"):
        Trainer(nn.Linear(1, 1), step_fn=_two_player_step, optimizers={"a.b": opt["a"]})
    with pytest.raises(ValueError, match="patience with step_fn needs val_metric"):
        Trainer(nn.Linear(1, 1), step_fn=_two_player_step, optimizers=opt, patience=2)
    with pytest.raises(ValueError, match="optimizers= is for step_fn"):
        Trainer(nn.Linear(1, 1), _elbo, optimizers=opt)
    with pytest.raises(ValueError, match="needs val_metric"):
        Trainer(nn.Linear(1, 1), step_fn=_two_player_step, optimizers=opt,
                progress=False).fit(_data(), _data())


@pytest.mark.parametrize("world, rank", [(1, 0), (2, 1)])
def test_tensor_batches_are_the_dataloader_batches(world, rank):
    """The Trainer's TensorDataset fast path yields what DataLoader + BatchSampler yields."""
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, TensorDataset

    from bayesdl.train.trainer import _TensorBatches

    data = TensorDataset(torch.arange(23.0), torch.arange(23) * 2)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=3)
    sampler.set_epoch(2)
    expected = list(DataLoader(data, batch_size=None,
                               sampler=BatchSampler(sampler, 5, drop_last=False)))
    ours = _TensorBatches(data, sampler, 5)
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected, strict=True):
        assert type(got) is type(want)
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b)


class _EpochOrderedStream(torch.utils.data.IterableDataset):
    """The batches of (X, y) in an order drawn from (seed, epoch): what a resumable stream
    does. ``order=None`` keeps the rows in place (for the comparison with shuffle=False)."""

    def __init__(self, data, batch_size, order=True):
        self.data, self.batch_size, self.order, self.epoch = data, batch_size, order, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        X, y = self.data
        rows = (torch.randperm(len(X), generator=torch.Generator().manual_seed(7 + self.epoch))
                if self.order else torch.arange(len(X)))
        for idx in rows.split(self.batch_size):
            yield X[idx], y[idx]


def test_a_stream_of_batches_trains_as_the_same_batches_from_tensors(tmp_path):
    data = _data(90)  # 16-row batches and a last one of 10
    seen = {"tensors": [], "stream": []}

    def loss(name):
        def fn(model, batch, step):
            seen[name].append((step.n_train, step.n_batches, step.batch_index))
            return _elbo(model, batch, step)
        return fn

    from_tensors, from_stream = _model(0), _model(0)
    tensors = _trainer(from_tensors, None, loss_fn=loss("tensors"), shuffle=False).fit(data)
    stream = _trainer(from_stream, None, loss_fn=loss("stream"), batch_size=999)  # not used
    stream.fit(_EpochOrderedStream(data, 16, order=False))
    assert seen["stream"] == seen["tensors"] and seen["stream"][0][:2] == (90, 6)
    for a, b in zip(from_tensors.state_dict().values(), from_stream.state_dict().values()):
        assert torch.equal(a, b)
    assert stream.history == tensors.history
    with pytest.raises(ValueError, match="empty"):
        Trainer(_model(0), _elbo, progress=False).fit(
            _EpochOrderedStream((data[0][:0], data[1][:0]), 16))


class _SizedStream(_EpochOrderedStream):
    """A stream of the rows in place that declares its size (``n_rows``, ``n_batches``) and
    counts the passes made over it."""

    def __init__(self, data, batch_size, n_rows=None, n_batches=None):
        super().__init__(data, batch_size, order=False)
        self.n_rows = len(data[0]) if n_rows is None else n_rows
        self.n_batches = -(-len(data[0]) // batch_size) if n_batches is None else n_batches
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        yield from super().__iter__()


def test_a_stream_that_declares_its_size_is_read_by_the_epochs_only():
    data = _data(90)  # 16-row batches and a last one of 10
    seen = []

    def loss(model, batch, step):
        seen.append((step.n_train, step.n_batches))
        return _elbo(model, batch, step)

    counted, declared = _model(0), _model(0)
    _trainer(counted, None).fit(_EpochOrderedStream(data, 16, order=False))
    stream = _SizedStream(data, 16)
    _trainer(declared, None, loss_fn=loss).fit(stream)
    assert stream.passes == 6  # max_epochs: no counting pass
    assert set(seen) == {(90, 6)}
    for a, b in zip(counted.state_dict().values(), declared.state_dict().values()):
        assert torch.equal(a, b)
    # a wrong declaration is caught at the end of the first epoch
    with pytest.raises(ValueError, match="yielded 6 batches of 90 rows in all, but it holds "
                                         "6 batches of 100 rows"):
        _trainer(_model(0), None).fit(_SizedStream(data, 16, n_rows=100))
    with pytest.raises(ValueError, match="non-negative integers"):
        _trainer(_model(0), None).fit(_SizedStream(data, 16, n_batches=-1))


def test_an_interrupted_stream_resumes_exactly_when_its_order_follows_set_epoch(tmp_path):
    data = _data()
    full = _model(0)
    _trainer(full, tmp_path / "full").fit(_EpochOrderedStream(data, 16))

    def interrupted(model, batch, step):
        if step.epoch == 3 and step.batch_index == 1:
            raise KeyboardInterrupt
        return _elbo(model, batch, step)

    with pytest.raises(KeyboardInterrupt):
        _trainer(_model(0), tmp_path / "run", loss_fn=interrupted).fit(
            _EpochOrderedStream(data, 16))
    resumed_model = _model(5)
    resumed = _trainer(resumed_model, tmp_path / "run", resume=True).fit(
        _EpochOrderedStream(data, 16))
    for (k, a), b in zip(full.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [h["epoch"] for h in resumed.history] == list(range(6))
