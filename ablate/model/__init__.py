"""The model layer: the transformer (:mod:`~ablate.model.transformer`), its settings
(:mod:`~ablate.model.config`), the attention engine and the component registries
(:mod:`~ablate.model.encodings`, :mod:`~ablate.model.pooling`)."""
