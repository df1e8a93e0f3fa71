"""Straight-through estimators (STE) for rounding and sign."""
import torch


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest in the forward pass, identity gradient in the backward.

    >>> import torch
    >>> round_ste(torch.tensor([0.4, 1.6])).tolist()
    [0.0, 2.0]
    """
    return x + (torch.round(x) - x).detach()


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged in the forward pass, its gradient times ``scale`` in the backward."""
    return _ScaleGrad.apply(x, scale)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """``sign`` (with ``sign(0) = 1``) forward, identity gradient backward."""
    s = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    return x + (s - x).detach()
