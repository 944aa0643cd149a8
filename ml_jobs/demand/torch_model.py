"""The torch demand network: a dense encoder-decoder (TiDE-style) with a count-safe quantile head.

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

Head: demand is mostly small counts and zeros (half the item-days of the demo shop sell
nothing), so quantiles must be able to sit exactly at zero and never cross. The head emits a
free start a and two non-negative increments b, c (softplus) and clips the running sums at zero:
p10 = relu(a), p50 = relu(a + b), p90 = relu(a + b + c). So 0 <= p10 <= p50 <= p90 by
construction, and an intermittent item reaches p10 = 0 (or p50 = 0) exactly: the quantiles of a
zero-inflated target, learned by pinball loss rather than assumed from a count distribution.
Backtest (demo shop, 3 cutoffs) against the alternatives tried: a softplus-only head never
reached zero and missed most zero days (p10-p90 coverage 0.45); a sharper softplus (beta 4)
with zeroing at predict time, and unclipped sums clipped only at predict time, both scored
worse (WAPE 0.65 vs 0.61).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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
    n_quantiles: int = 3


class ResidualBlock(nn.Module):
    """Dense block with a linear skip: the building brick of TiDE."""

    def __init__(self, n_in: int, n_out: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out), nn.Dropout(dropout)
        )
        self.skip = nn.Linear(n_in, n_out)
        self.norm = nn.LayerNorm(n_out)

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
        self.decoder = ResidualBlock(c.decoder_dim + c.n_future + 1, c.n_quantiles, 64, 0.0)

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
