"""Export runners on top of :mod:`agents.export`: run directory -> integer artefacts + fidelity report
(``train_agent.py export``), quantisation-aware fine-tuning on a run's replay buffer, and the exported C as
Cortex-M4 firmware under QEMU."""
