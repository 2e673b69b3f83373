"""Ablation studies shipped with vitnas, as data: one YAML file per study (see nas/ablation/study.py for the format).

A package only so the files install with vitnas and `vitnas ablate NAME` finds them; it holds no code."""
