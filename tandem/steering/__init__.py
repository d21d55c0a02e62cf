"""Steering the SRM at step boundaries: vectors (SEAL and RankGuide's rank-filtered one) and calibration."""

from tandem.steering.vector import STEER_KINDS, Steering, SteeringError, SteerVectors

__all__ = ["STEER_KINDS", "Steering", "SteeringError", "SteerVectors"]
