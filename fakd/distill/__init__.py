"""fakd.distill: feature taps, FAKD's spatial affinity loss, the KD baselines, the method registry and
the objective that combines them."""

from fakd.distill.affinity import affinity_loss, normalise_positions, spatial_affinity
from fakd.distill.baselines import (AttentionTransferLoss, ChannelAffinityLoss, FeatureAffinityLoss,
                                    FitNetLoss, FSPLoss, attention_map, channel_affinity,
                                    fsp_matrix)
from fakd.distill.methods import METHODS, Method, check_methods, feature_methods, known_methods, register_method
from fakd.distill.objective import DistillationObjective, DistillationTerm, objective_for
from fakd.distill.taps import FeatureTaps, check_tap_pairs, resolve_taps, valid_tap_names

__all__ = [
    "AttentionTransferLoss", "ChannelAffinityLoss", "DistillationObjective", "DistillationTerm",
    "FSPLoss", "FeatureAffinityLoss", "FeatureTaps", "FitNetLoss",
    "METHODS", "Method", "affinity_loss", "attention_map", "channel_affinity",
    "check_methods", "check_tap_pairs", "feature_methods", "fsp_matrix", "known_methods", "normalise_positions",
    "objective_for", "register_method", "resolve_taps", "spatial_affinity", "valid_tap_names",
]
