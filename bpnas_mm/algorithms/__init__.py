"""The BP-NAS algorithm and its losses."""
from .bpnas import BPNAS
from .losses import barrier_penalty, cost_loss, prob1_regularizer

__all__ = ['BPNAS', 'barrier_penalty', 'cost_loss', 'prob1_regularizer']
