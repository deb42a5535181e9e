"""fakd.distill: feature taps, FAKD's spatial affinity loss, the KD baselines, the objective."""

from fakd.distill.affinity import affinity_loss, normalise_positions, spatial_affinity
from fakd.distill.baselines import (AttentionTransferLoss, ChannelAffinityLoss, FeatureAffinityLoss,
                                    FitNetLoss, FSPLoss, attention_map, channel_affinity,
                                    fsp_matrix)
from fakd.distill.objective import (FEATURE_LOSSES, KNOWN_METHODS, DistillationObjective,
                                    DistillationTerm)
from fakd.distill.taps import FeatureTaps, valid_tap_names

__all__ = [
    "AttentionTransferLoss", "ChannelAffinityLoss", "DistillationObjective", "DistillationTerm",
    "FEATURE_LOSSES", "FSPLoss", "FeatureAffinityLoss", "FeatureTaps", "FitNetLoss",
    "KNOWN_METHODS", "affinity_loss", "attention_map", "channel_affinity", "fsp_matrix",
    "normalise_positions", "spatial_affinity", "valid_tap_names",
]
