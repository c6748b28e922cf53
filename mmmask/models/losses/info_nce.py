"""InfoNCE as a pure function (no trainer, no module state)."""
from typing import Optional

import torch


class _InfoNCEBank(torch.autograd.Function):
    """Per-row ``logaddexp(l_pos, logsumexp(l_neg)) - l_pos`` with a fixed
    negative bank, holding one (M, K) buffer in all.

    Forward computes ``l_neg = (q / t) n^T`` (1/t applied to the (M, C)
    queries, not to the (M, K) product) and turns it, in place, into
    ``exp(l_neg - max)``; backward reuses it as the softmax numerators and
    applies the per-row factor to the (M, C) product, so the (M, 1 + K)
    logits are never concatenated nor kept twice, and the buffer is passed
    over only by the max, the shift, the exp and the sum.
    """

    @staticmethod
    def forward(ctx, query, positive, negatives, temperature, extra):
        inv_t = 1.0 / temperature
        acc = torch.promote_types(query.dtype, torch.float32)  # fp16 -> fp32
        l_pos = torch.einsum('mc,mc->m', query, positive).to(acc) * inv_t
        neg = torch.mm(query * inv_t, negatives.t()).to(acc)  # (M, K)
        if extra is not None:
            neg = torch.cat([neg, extra.to(acc)], dim=1)
        row_max = torch.maximum(neg.max(dim=1).values, l_pos)  # (M,)
        neg.sub_(row_max[:, None]).exp_()  # exp(l_neg - max)
        pos_exp = (l_pos - row_max).exp()
        denom = neg.sum(dim=1) + pos_exp  # sum of exp(logit - max)
        loss = denom.log() + row_max - l_pos  # (M,)
        ctx.save_for_backward(query, positive, negatives, neg, pos_exp, denom)
        ctx.inv_t = inv_t
        ctx.has_extra = extra is not None
        ctx.extra_dtype = None if extra is None else extra.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        query, positive, negatives, neg, pos_exp, denom = ctx.saved_tensors
        inv_t = ctx.inv_t
        k = negatives.shape[0]
        # d loss_m / d l_j = softmax_j - [j = pos]; chain rule through /t:
        # softmax_j = neg_mj / denom_m, so the row factor goes on (M, C)
        scale = (grad_loss / denom * inv_t)[:, None]  # (M, 1)
        w_pos = (grad_loss * (pos_exp / denom - 1.0) * inv_t)[:, None]
        grad_q = grad_p = grad_extra = None
        dtype = query.dtype
        if ctx.needs_input_grad[0]:
            grad_q = ((torch.mm(neg[:, :k].to(negatives.dtype), negatives)
                       * scale.to(negatives.dtype)).to(dtype)
                      + w_pos.to(dtype) * positive)
        if ctx.needs_input_grad[1]:
            grad_p = (w_pos * query.to(w_pos.dtype)).to(positive.dtype)
        if ctx.has_extra and ctx.needs_input_grad[4]:
            grad_extra = (neg[:, k:] * scale / inv_t).to(  # extra: its own 1/t
                ctx.extra_dtype)
        return grad_q, grad_p, None, None, grad_extra


def info_nce(query: torch.Tensor,
             positive: torch.Tensor,
             negatives: torch.Tensor,
             temperature: float,
             extra_neg_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """InfoNCE with one positive per query and a shared negative bank.

    ``L = mean_i [ -log exp(q_i.k+_i / t) / (exp(q_i.k+_i / t)
    + sum_j exp(q_i.n_j / t)) ]`` (MoCo, Eq. 1), i.e. the cross-entropy of
    ``[l_pos, l_neg]`` with label 0, computed without materialising the
    concatenated logits and with one (M, K) buffer for forward and backward.
    No gradient flows into ``negatives`` (a queue); use plain autograd
    (e.g. ``F.cross_entropy``) where the negatives need one.

    Args:
        query: (M, C), L2-normalised.
        positive: (M, C), L2-normalised, the positive key of each query.
        negatives: (K, C), L2-normalised negatives shared by all queries
            (the queue).
        temperature: t.
        extra_neg_logits: optional (M, E) logits already divided by t, added
            as further negatives (e.g. a hard negative per query).
    Returns:
        scalar loss (mean over the M queries), at least float32.
    """
    if negatives.requires_grad:
        raise ValueError('info_nce takes a bank of negatives without '
                         'gradient (a queue); detach it')
    return _InfoNCEBank.apply(query, positive, negatives.detach(),
                              float(temperature), extra_neg_logits).mean()
