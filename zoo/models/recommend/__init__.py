"""Recommenders for the ``rating`` and ``ranking`` tasks: matrix factorisation, NCF, two-tower, DLRM."""

from zoo.models.recommend.model import (DLRM, NCF, DLRMConfig, MatrixFactorization, MFConfig, NCFConfig,
                                        RecommenderConfig, TwoTower, TwoTowerConfig, TwoTowerRetrieval)

__all__ = ["DLRM", "DLRMConfig", "MFConfig", "MatrixFactorization", "NCF", "NCFConfig", "RecommenderConfig",
           "TwoTower", "TwoTowerConfig", "TwoTowerRetrieval"]
