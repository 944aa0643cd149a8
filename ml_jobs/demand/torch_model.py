"""The torch demand network: a dense encoder-decoder (TiDE-style) with count-safe heads.

One sample is one item seen at one forecast origin:

    past    (B, L, 6)  the last L days: units, observed (0 on stock-out / before launch), views,
                       carts, category searches, discount fraction
    future  (B, H, F)  known covariates of the H target days: planned discount, calendar
    seasonal(B, H)     mean units on the target's weekday over the last 4 weeks (the seasonal
                       naive forecast, a strong per-horizon hint the network refines)
    item    (B,)       item index (0 = an item the model has not seen: cold start)
    category(B,)       category index (0 = unknown)
    static  (B, S)     numbers known at the origin (log age, ...)

The network normalises its own inputs: units are divided by the item's recent level (1 + mean
observed units over the last 28 days) and behaviour by its own recent level, so fast and slow
movers share one set of weights; the output is multiplied back by the level. A dense residual
encoder reads the flattened window, the embeddings and every future covariate and emits one
small vector per horizon; a per-horizon decoder mixes that vector with the day's own covariates.

Heads: demand is mostly small counts and zeros (half the item-days of the demo shop sell
nothing), so quantiles must be able to sit exactly at zero and never cross.

- negbin (default): the decoder emits a mean (softplus, times the level) and a dispersion d of a
  negative binomial, variance mean + d * mean^2, trained by its masked log-likelihood.
  Quantiles come from the distribution, so they never cross and a slow mover gets p10 = p50 = 0
  from the mass at zero. The likelihood learns from every count (pinball only from which side
  of each quantile it falls), a likely reason it beats the quantile head on the backtest.
  The median is read as a count (it minimises absolute error); p10 and p90 are read off the CDF
  with each count's mass spread over a unit interval (`negbin_quantiles`, mode "mid"): read as
  counts, p10..p90 covers every day that sells exactly p10 or p90 units, 91 % of days.
- quantile: a free start a and two non-negative increments b, c (softplus), running sums
  clipped at zero: p10 = relu(a), p50 = relu(a + b), p90 = relu(a + b + c), trained by pinball.

The decoder has no LayerNorm on its output: normalising two or three outputs pins them to one
degree of freedom, which cost the quantile head 0.014 of pinball (0.398 -> 0.384) on the demo
backtest. Numbers of the alternatives tried are in bench/RESULTS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("quantile", "negbin")
QUANTILE_MODES = {"discrete": None, "linear": 0.0, "mid": 0.5}  # NB quantiles: see negbin_quantiles
MAX_DISPERSION = 10.0  # NB variance mean + d * mean^2 is capped at d = 10 (an extreme spread)
PAST_CHANNELS = ("units", "observed", "views", "carts", "searches", "discount")
LEVEL_DAYS = 28  # window of the level that normalises units and behaviour


@dataclass(frozen=True)
class NetConfig:
    window: int = 56  # L: past days read
    horizon: int = 28  # H: days forecast
    n_future: int = 12  # F: known covariates per target day (see torch_data.FUTURE_FEATURES)
    n_static: int = 2  # S: numeric static inputs
    n_items: int = 1  # item embedding rows (index 0 = unseen item)
    n_categories: int = 1  # category embedding rows (index 0 = unknown)
    item_dim: int = 8
    category_dim: int = 4
    hidden: int = 256
    decoder_dim: int = 16  # per-horizon vector the encoder emits
    n_blocks: int = 2
    dropout: float = 0.0
    head: str = "quantile"  # quantile: p10/p50/p90 by pinball | negbin: NB mean and dispersion
    # LayerNorm on the head's few outputs pins them to a circle (one degree of freedom): off
    decoder_norm: bool = False
    n_quantiles: int = 3

    @property
    def n_outputs(self) -> int:
        return self.n_quantiles if self.head == "quantile" else 2


class ResidualBlock(nn.Module):
    """Dense block with a linear skip: the building brick of TiDE."""

    def __init__(
        self, n_in: int, n_out: int, hidden: int, dropout: float, norm: bool = True
    ) -> None:
        super().__init__()
        self.dense = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out), nn.Dropout(dropout)
        )
        self.skip = nn.Linear(n_in, n_out)
        self.norm = nn.LayerNorm(n_out) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dense(x) + self.skip(x))


def recent_level(values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """1 + mean of `values` over the observed days of the last LEVEL_DAYS: (B, L) -> (B,)."""
    v, m = values[:, -LEVEL_DAYS:], observed[:, -LEVEL_DAYS:]
    return 1.0 + (v * m).sum(1) / m.sum(1).clamp(min=1.0)


class DemandNet(nn.Module):
    """Quantiles (B, H, 3) of units for every horizon, 0 <= p10 <= p50 <= p90."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.item_emb = nn.Embedding(c.n_items, c.item_dim)
        self.category_emb = nn.Embedding(c.n_categories, c.category_dim)
        n_in = (
            c.window * len(PAST_CHANNELS)
            + c.horizon * (c.n_future + 1)
            + c.item_dim
            + c.category_dim
            + c.n_static
            + 1  # log level
        )
        blocks = [ResidualBlock(n_in, c.hidden, c.hidden, c.dropout)]
        blocks += [
            ResidualBlock(c.hidden, c.hidden, c.hidden, c.dropout) for _ in range(c.n_blocks - 1)
        ]
        self.encoder = nn.Sequential(*blocks)
        self.to_horizons = nn.Linear(c.hidden, c.horizon * c.decoder_dim)
        if c.head not in HEADS:
            raise ValueError(f"unknown head {c.head!r}; expected one of {HEADS}")
        self.decoder = ResidualBlock(
            c.decoder_dim + c.n_future + 1, c.n_outputs, 64, 0.0, norm=c.decoder_norm
        )

    def forward(
        self,
        past: torch.Tensor,
        future: torch.Tensor,
        seasonal: torch.Tensor,
        item: torch.Tensor,
        category: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        c = self.config
        units, observed = past[..., 0], past[..., 1]
        level = recent_level(units, observed)  # (B,)
        always = torch.ones_like(observed)
        scaled = [units / level[:, None], observed]
        for k in (2, 3, 4):  # behaviour: views, carts, searches, each by its own level
            scaled.append(past[..., k] / recent_level(past[..., k], always)[:, None])
        scaled.append(past[..., 5])
        future = torch.cat([future, (seasonal / level[:, None])[..., None]], dim=-1)
        x = torch.cat(
            [
                torch.stack(scaled, dim=-1).flatten(1),
                future.flatten(1),
                self.item_emb(item),
                self.category_emb(category),
                static,
                torch.log(level)[:, None],
            ],
            dim=1,
        )
        h = self.to_horizons(self.encoder(x)).view(-1, c.horizon, c.decoder_dim)
        raw = self.decoder(torch.cat([h, future], dim=-1))  # (B, H, Q)
        raw = raw.float()
        if c.head == "negbin":  # mean in units (scaled back by the level), dispersion >= 0
            mean = F.softplus(raw[..., 0]) * level[:, None]
            dispersion = (F.softplus(raw[..., 1]) + 1e-4).clamp(max=MAX_DISPERSION)
            return torch.stack([mean, dispersion], dim=-1)
        steps = torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1)
        return F.relu(torch.cumsum(steps, dim=-1)) * level[:, None, None]


def pinball(
    quantiles: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    levels: tuple[float, ...],
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked mean pinball loss over (B, H) targets and (B, H, Q) quantiles.

    `mask` is 0 on censored days (stock-outs), days before launch and days past the data, so
    those never pull the forecast down. `weight` (B,) re-weights samples.
    """
    tau = torch.tensor(levels, device=quantiles.device, dtype=quantiles.dtype)
    error = target[..., None] - quantiles
    loss = torch.maximum(tau * error, (tau - 1.0) * error).mean(-1)  # (B, H)
    w = mask if weight is None else mask * weight[:, None]
    return (loss * w).sum() / w.sum().clamp(min=1e-6)


def negbin_nll(
    params: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Masked mean negative log-likelihood of counts under NB(mean, dispersion) (B, H, 2).

    Variance is mean + dispersion * mean^2: Poisson at dispersion 0, more spread above it.
    """
    mean, r = params[..., 0].clamp(min=1e-6), 1.0 / params[..., 1]
    y = target
    log_p = (
        torch.lgamma(y + r)
        - torch.lgamma(r)
        - torch.lgamma(y + 1.0)
        + r * torch.log(r / (r + mean))
        + y * torch.log(mean / (r + mean))
    )
    w = mask if weight is None else mask * weight[:, None]
    return -(log_p * w).sum() / w.sum().clamp(min=1e-6)


def negbin_quantiles(
    params: torch.Tensor, levels: tuple[float, ...], mode: str = "discrete"
) -> torch.Tensor:
    """Quantiles (..., Q) of NB(mean, dispersion) (..., 2): the smallest count with CDF >= level.

    Other `mode`s spread each count's probability evenly over a unit interval and read the
    quantile off that continuous CDF (clipped at zero): "linear" over (k - 1, k] (the CDF joined
    by straight lines between counts), "mid" over (k - 1/2, k + 1/2]. A discrete p10..p90 covers
    every count equal to its ends, so it covers more than 80 % of days; these cover fewer.

    The pmf is summed over 0..K, K past mean + (k + 1) standard deviations of the widest one with
    1 / (1 + k^2) = 1 - max(level): beyond that the CDF has passed every level (Cantelli).
    """
    mean, alpha = params[..., 0].double().clamp(min=1e-9), params[..., 1].double()
    r = 1.0 / alpha
    sd = torch.sqrt(mean + alpha * mean**2)
    reach = math.sqrt(max(levels) / (1.0 - max(levels))) + 1.0
    top = int(torch.ceil((mean + reach * sd).max()).item()) + 2 if mean.numel() else 2
    k = torch.arange(top, dtype=torch.float64)
    shape = mean.shape + (1,)
    m, rr = mean.reshape(shape), r.reshape(shape)
    log_pmf = (
        torch.lgamma(k + rr)
        - torch.lgamma(rr)
        - torch.lgamma(k + 1.0)
        + rr * torch.log(rr / (rr + m))
        + k * torch.log(m / (rr + m))
    )
    cdf = torch.cumsum(torch.exp(log_pmf), dim=-1)
    tau = torch.tensor(levels, dtype=torch.float64)
    counts = (cdf[..., None, :] < tau[:, None] - 1e-9).sum(-1)  # (..., Q)
    if mode == "discrete":
        return counts.float()
    offset = QUANTILE_MODES[mode]
    below = torch.gather(cdf, -1, (counts - 1).clamp(min=0)) * (counts > 0)
    at = torch.gather(cdf, -1, counts.clamp(max=top - 1))
    step = ((tau - below) / (at - below).clamp(min=1e-12)).clamp(0.0, 1.0)
    return (counts - 1 + offset + step).clamp(min=0.0).float()
