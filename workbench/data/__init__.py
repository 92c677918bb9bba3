"""The pretraining data pipeline: generated corpus, planted noise, dedup, filters, classifiers, mix."""
