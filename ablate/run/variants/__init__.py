"""Evaluation-only variants of a trained model: train once, keep the checkpoint, evaluate many.

A suite's ``[variants.<name>]`` tables (:mod:`ablate.suite.variant_schema`) name settings
that change only how a trained model is evaluated: RoPE PI / NTK-aware / dynamic
NTK / YaRN (:mod:`~ablate.run.variants.rope`), randomized positions' evaluation mode,
and a short fine-tune at a longer length first (:mod:`~ablate.run.variants.settings`).
After a suite's training runs, every stored ``ok`` run is evaluated under each
variant not yet stored for it (:mod:`~ablate.run.variants.run`), from its checkpoint
(:mod:`ablate.run.checkpoints`); the rows go to the ``variant_metrics`` table of the
same results database (:mod:`ablate.results.variant_table`) and appear in the tidy
frame as rows of the same run with a ``variant`` column (``base`` for the
trained model's own evaluation), which reports draw as curves of their own
(:mod:`ablate.analysis.report.variant_curves`).
"""
