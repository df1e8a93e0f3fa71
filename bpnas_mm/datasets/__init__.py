from .split import SplitDataset

__all__ = ['SplitDataset']
