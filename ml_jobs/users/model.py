"""The user sequence model: one encoder over a user's recent events, four heads.

Input per event: item, category and event-type embeddings, plus log hours before the cutoff
and log price, projected to `d_model`. Attention pooling (a learned query over the events,
padding masked) and the newest event's vector summarise the sequence; every step is a batched
matmul, so it trains fast on a CPU. The summary is joined with the static features (Feast
features and the activity signals of ml_jobs.users.signals, standardised) into the user
vector u. Each head adds a wide, linear part on the signals to the deep part on u:

    propensity   logit of P(purchase within the window): head(u) + linear(static features)
                 + linear(log expected purchases), where expected purchases = sum over
                 categories of the user's share of the category's traffic x its 28-day sales
    spend        log of expected spend in the window (Poisson mean)
    category     logits of the next-window category distribution: head(u) + weights on the
                 user's log category shares and on log1p of their own purchases and recent
                 events per category
    item         logits over every item: u . item_embedding + item bias
                 + w . item signals (recent purchases and views of the item)
                 + a . the user's log share of the item's category
                 + v . log1p(the user's own purchases of the item, recent events on it)

The item head shares the item embedding table with the input, so recommendations are user
and item embeddings scored by a dot product on top of a share-of-category x item-momentum
prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SequenceModelConfig:
    n_items: int
    n_categories: int
    n_static: int
    item_category: tuple[int, ...] = ()  # category index (1..C) of item index 1..I
    n_event_types: int = 6
    n_item_signals: int = 4
    n_shares: int = 2
    d_item: int = 32
    d_category: int = 8
    d_kind: int = 4
    d_model: int = 32
    d_user: int = 32
    dropout: float = 0.1


@dataclass
class Batch:
    item: torch.Tensor  # (B, L) long
    category: torch.Tensor  # (B, L) long
    kind: torch.Tensor  # (B, L) long
    numeric: torch.Tensor  # (B, L, 2) float: log gap hours, log price
    static: torch.Tensor  # (B, S) float
    item_signals: torch.Tensor  # (B, n_items, K) float: see signals.item_signals
    user_items: torch.Tensor  # (B, 2, n_items) float: the user's own past purchases, recent events
    category_share: torch.Tensor  # (B, 2, C) float: log share of each category's traffic

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


@dataclass
class Output:
    propensity_logit: torch.Tensor  # (B,)
    log_spend: torch.Tensor  # (B,)
    category_logits: torch.Tensor  # (B, C)
    item_logits: torch.Tensor  # (B, I)


class UserSequenceModel(nn.Module):
    def __init__(self, config: SequenceModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.item_emb = nn.Embedding(c.n_items + 1, c.d_item, padding_idx=0)
        self.category_emb = nn.Embedding(c.n_categories + 1, c.d_category, padding_idx=0)
        self.kind_emb = nn.Embedding(c.n_event_types, c.d_kind, padding_idx=0)
        self.event_proj = nn.Linear(c.d_item + c.d_category + c.d_kind + 2, c.d_model)
        self.event_mlp = nn.Sequential(nn.GELU(), nn.Linear(c.d_model, c.d_model), nn.GELU())
        self.attention = nn.Linear(c.d_model, 1)
        self.user = nn.Sequential(
            nn.Linear(2 * c.d_model + c.n_static, 2 * c.d_user),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(2 * c.d_user, c.d_user),
            nn.GELU(),
        )
        self.propensity = nn.Linear(c.d_user, 1)
        self.propensity_wide = nn.Linear(c.n_static + c.n_shares, 1)
        self.spend = nn.Linear(c.d_user, 1)
        self.category = nn.Linear(c.d_user, c.n_categories)
        self.to_item_space = nn.Linear(c.d_user, c.d_item)
        self.item_bias = nn.Parameter(torch.zeros(c.n_items))
        self.signal_weight = nn.Parameter(torch.full((c.n_item_signals,), 0.5))
        self.item_share_weight = nn.Parameter(torch.full((c.n_shares,), 0.5))
        self.category_share_weight = nn.Parameter(torch.full((c.n_shares,), 0.5))
        self.history_weight = nn.Parameter(torch.tensor([1.0, 0.5]))  # a repurchase prior
        # item -> category one-hot, to sum the user's item history into category history
        one_hot = torch.zeros(c.n_items, c.n_categories)
        if c.item_category:
            one_hot[torch.arange(c.n_items), torch.tensor(c.item_category) - 1] = 1.0
        self.register_buffer("item_to_category", one_hot, persistent=False)
        index = torch.tensor(c.item_category) - 1 if c.item_category else torch.zeros(0)
        self.register_buffer("item_category_index", index.long(), persistent=False)
        self.category_history_weight = nn.Parameter(torch.tensor([0.5, 1.0]))

    def user_vector(self, batch: Batch) -> torch.Tensor:
        x = torch.cat(
            [
                self.item_emb(batch.item),
                self.category_emb(batch.category),
                self.kind_emb(batch.kind),
                batch.numeric,
            ],
            dim=-1,
        )
        h = self.event_mlp(self.event_proj(x))  # (B, L, d_model)
        pad = batch.kind == 0
        weights = self.attention(h).squeeze(-1).masked_fill(pad, -1e4)
        weights = torch.softmax(weights, dim=-1) * (~pad).float()
        pooled = (weights.unsqueeze(-1) * h).sum(dim=1)
        newest = h[:, -1] * (~pad[:, -1]).float().unsqueeze(-1)  # sequences are right-aligned
        return self.user(torch.cat([pooled, newest, batch.static], dim=-1))

    def expected_purchases(self, batch: Batch) -> torch.Tensor:
        """(B, n_shares) log of sum_c share(user, c) x category sales in the last 28 days."""
        sales = torch.expm1(batch.item_signals[..., 1]) @ self.item_to_category  # (B, C)
        return torch.logsumexp(batch.category_share + torch.log1p(sales)[:, None, :], dim=-1)

    def forward(self, batch: Batch) -> Output:
        u = self.user_vector(batch)
        item_vecs = self.item_emb.weight[1:]  # (I, d_item), padding row left out
        item_share = batch.category_share[:, :, self.item_category_index]  # (B, n_shares, I)
        item_logits = (
            self.to_item_space(u) @ item_vecs.T
            + self.item_bias
            + batch.item_signals @ self.signal_weight
            + torch.einsum("k,bki->bi", self.item_share_weight, item_share)
            + torch.einsum("k,bki->bi", self.history_weight, batch.user_items)
        )
        wide = torch.cat([batch.static, self.expected_purchases(batch)], dim=-1)
        return Output(
            propensity_logit=(self.propensity(u) + self.propensity_wide(wide)).squeeze(-1),
            log_spend=self.spend(u).squeeze(-1),
            category_logits=self.category(u)
            + torch.einsum("k,bkc->bc", self.category_share_weight, batch.category_share)
            + torch.einsum(
                "k,bkc->bc",
                self.category_history_weight,
                torch.log1p(torch.expm1(batch.user_items) @ self.item_to_category),
            ),
            item_logits=item_logits,
        )


def soft_cross_entropy(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against count-weighted targets, averaged over rows with any count."""
    total = counts.sum(dim=-1)
    keep = total > 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    target = counts[keep] / total[keep, None]
    return -(target * F.log_softmax(logits[keep], dim=-1)).sum(dim=-1).mean()


def loss_terms(
    out: Output,
    purchased: torch.Tensor,
    spend: torch.Tensor,
    item_counts: torch.Tensor,
    category_counts: torch.Tensor,
    spend_scale: float,
) -> dict[str, torch.Tensor]:
    return {
        "propensity": F.binary_cross_entropy_with_logits(out.propensity_logit, purchased),
        "spend": F.poisson_nll_loss(out.log_spend, spend / spend_scale, log_input=True),
        "category": soft_cross_entropy(out.category_logits, category_counts),
        "item": soft_cross_entropy(out.item_logits, item_counts),
    }
