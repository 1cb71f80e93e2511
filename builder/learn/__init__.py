"""A model trained on the project's own labels: confident entity and stance proposals, and uncertainty.

`builder.learn.train.train_model` writes a model folder; `builder.learn.trained.load_model` reads it.
"""
