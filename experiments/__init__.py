"""Configs, training/evaluation runners, benchmarks and result plots."""
