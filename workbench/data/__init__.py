"""The pretraining data pipeline: generated corpus, planted noise, dedup, filters, classifiers, mix.

``build_data(cfg, run, force=False)`` writes ``runs/<name>/data/`` (train, heldout and anneal JSONL,
the build report and the manifest); ``corpus_texts(data_dir)`` iterates the train texts.
"""

from workbench.data.corpus import corpus_texts

__all__ = ["build_data", "corpus_texts"]


def __getattr__(name: str):
    # build_data pulls in datatrove, datasketch and the task world: load it only when asked for
    if name == "build_data":
        from workbench.data.build import build_data

        return build_data
    raise AttributeError(f"module 'workbench.data' has no attribute {name!r}")
